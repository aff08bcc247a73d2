"""The report reads on a screen: one table per test set (not one row of 17 or 29 columns), and the
example figures show the PAN beside the upsampled MS, the fused image and the reference."""

from __future__ import annotations

import pytest
import torch

from panfw.evaluation.report import metric_tables, plot_examples, report_markdown
from panfw.evaluation.results import ModelInfo, Results, metric_meta

RR = ["psnr", "ssim", "sam", "ergas", "q2n"]
FR = ["d_lambda", "d_s", "qnr", "hqnr"]
SETS = ["wv2", "wv3", "gf2"]


def _scores(shift: float) -> dict:
    return {s: {"rr": {m: {"mean": 0.5 + shift + i / 10, "std": 0.0, "n": 1} for i, m in enumerate(RR)},
                "fr": {m: {"mean": 0.1 + shift, "std": 0.0, "n": 1} for m in FR}} for s in SETS}


def test_one_table_per_test_set_of_readable_width():
    meta = metric_meta(RR + FR)
    r = Results(name="x", model=ModelInfo(name="m", params=1000), final=_scores(0.0), metrics=meta)
    text = report_markdown(r, [])
    for s in SETS:
        assert f"### {s}" in text
    widths = [line.count("|") - 1 for line in text.splitlines() if line.startswith("| Model")]
    assert len(widths) == 2 * len(SETS)  # RR and FR, one per set
    assert max(widths) <= 3 + max(len(RR), len(FR))  # Model, Params, FLOPs + one set's metrics
    rows = [{"label": "a", "params": 1, "flops": None, "results": _scores(0.0)},
            {"label": "b", "params": 1, "flops": None, "results": _scores(0.1)}]
    tables = metric_tables(rows, "rr", meta)
    assert [label for label, _ in tables] == SETS and all("**" in t for _, t in tables)  # best marked per set


def test_example_figure_has_a_pan_column(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = []
    real = plt.Figure.savefig

    def spy(fig, *a, **kw):
        titles.extend(ax.get_title() for ax in fig.axes if ax.get_title())
        return real(fig, *a, **kw)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    g = torch.Generator().manual_seed(0)
    im = {k: torch.rand(4, 32, 32, generator=g) for k in ("lms", "fused", "gt")}
    im["pan"] = torch.rand(1, 32, 32, generator=g)
    out = plot_examples([im], tmp_path / "ex.png", "wv3")
    assert out.is_file() and titles[:3] == ["PAN", "upsampled MS (lms)", "fused"] and "reference" in titles
    titles.clear()
    plot_examples([{k: v for k, v in im.items() if k != "gt"}], tmp_path / "fr.png", "wv3")
    assert titles == ["PAN", "upsampled MS (lms)", "fused"]
