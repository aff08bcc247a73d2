"""Run reports: ``results.json``, ``report.md`` with tables in the layout of the PanTiny paper's
Table 1 (parameters, FLOPs, per-dataset metrics; best in bold, second underlined), PNG figures
(training curves; upsampled MS | fused | reference | error map, true colour), and a sweep's
comparison table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from panfw.evaluation.results import MetricMeta, Results, human_time, read_metrics_csv


def _lookup(meta: Any) -> Callable[[str], MetricMeta]:
    """name -> MetricMeta from a Results, a {name: MetricMeta or dict} mapping, or nothing (the
    metric registry, else the name and 4 decimals)."""
    if isinstance(meta, MetricMeta):
        return lambda name: meta
    if isinstance(meta, Results):
        holder = meta
    else:
        holder = Results.from_dict({"metrics": {k: attrs.asdict(v) if isinstance(v, MetricMeta) else v
                                                for k, v in dict(meta or {}).items()}})
    cache: dict[str, MetricMeta] = {}

    def get(name: str) -> MetricMeta:
        if name not in cache:
            cache[name] = holder.meta(name)
        return cache[name]

    return get


def title(metric: str, meta: Any = None) -> str:
    """The metric's display title (its registration's ``title``)."""
    return _lookup(meta)(metric).title or metric


def fmt(metric: str, value: float | None, meta: Any = None) -> str:
    """A value with the metric's registered number of decimals; '–' for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{_lookup(meta)(metric).decimals}f}"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


# ---------------------------------------------------------------------------------------------
# tables


def _row_values(results: dict, labels: list[str], res: str, metrics: list[str]) -> list[float | None]:
    out = []
    for label in labels:
        scores = results.get(label, {}).get(res, {})
        for m in metrics:
            out.append(scores[m]["mean"] if m in scores else None)
    return out


def metric_table(rows: list[dict], res: str, meta: Any = None, sections: bool = True) -> str:
    """A Markdown table: Model | Params (K) | FLOPs (G) | <set> <metric><arrow> ...

    ``rows``: dicts with label, params, flops, results ({set: {rr|fr: {metric: {mean,...}}}}) and
    an optional section heading; the best value of each column is bold, the second underlined.
    ``meta``: a Results or {metric: MetricMeta} giving titles, decimals and better directions."""
    get = _lookup(meta)
    labels: list[str] = []
    metrics: list[str] = []
    for row in rows:
        for label, r in row["results"].items():
            if res in r:
                if label not in labels:
                    labels.append(label)
                for m in r[res]:
                    if m not in metrics:
                        metrics.append(m)
    if not labels:
        return ""
    values = [_row_values(r["results"], labels, res, metrics) for r in rows]
    ncols = len(labels) * len(metrics)
    marks: list[dict[int, str]] = [{} for _ in rows]
    for c in range(ncols):
        m = metrics[c % len(metrics)]
        higher = get(m).higher_is_better
        shown = {i: fmt(m, v[c], get(m)) for i, v in enumerate(values) if v[c] is not None and not math.isnan(v[c])}
        ranked = sorted({(values[i][c], t) for i, t in shown.items()}, key=lambda p: -p[0] if higher else p[0])
        levels = list(dict.fromkeys(t for _, t in ranked))  # distinct values as printed, best first
        if len(shown) < 2 or len(levels) < 2:
            continue
        for i, t in shown.items():  # ties (as printed) share the mark
            if t == levels[0]:
                marks[i][c] = "bold"
            elif t == levels[1] and len(shown) >= 3:
                marks[i][c] = "under"

    def arrow(m: str) -> str:
        return "↑" if get(m).higher_is_better else "↓"

    head = ["Model", "Params (K)", "FLOPs (G)"] + [f"{label} {get(m).title or m}{arrow(m)}" for label in labels
                                                   for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    section = None
    for row, vals, mk in zip(rows, values, marks):
        if sections and row.get("section") and row["section"] != section:
            section = row["section"]
            lines.append(f"| *{section}* |" + " |" * (len(head) - 1))
        params = row.get("params")
        flops = row.get("flops")
        free = not params  # parameter-free methods: '-' in both columns, as the paper's Table 1
        cells = [row["label"], "-" if free else f"{params / 1e3:.1f}",
                 "-" if free else ("–" if flops is None else f"{flops / 1e9:.2f}")]
        for c, v in enumerate(vals):
            m = metrics[c % len(metrics)]
            text = fmt(m, v, get(m))
            if mk.get(c) == "bold":
                text = f"**{text}**"
            elif mk.get(c) == "under":
                text = f"<u>{text}</u>"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metric_tables(rows: list[dict], res: str, meta: Any = None, sections: bool = True) -> list[tuple[str, str]]:
    """(test set, table) per test set: ``metric_table`` of one set at a time, so a table has three
    columns plus one per metric and reads on a screen (the combined table grows with every set)."""
    labels: list[str] = []
    for row in rows:
        for label, r in row["results"].items():
            if res in r and label not in labels:
                labels.append(label)
    out = []
    for label in labels:
        one = [{**row, "results": {label: row["results"][label]}} for row in rows if label in row["results"]]
        table = metric_table(one, res, meta, sections)
        if table:
            out.append((label, table))
    return out


def as_results(results: Results | dict) -> Results:
    """A Results (results.json's dict is read with ``Results.from_dict``)."""
    return results if isinstance(results, Results) else Results.from_dict(results)


def rows_of(results: Results | dict) -> list[dict]:
    """The report rows of one run: its parameter-free baselines, then the model."""
    r = as_results(results)
    rows = []
    for name, b in r.baselines.items():
        rows.append({"label": name, "params": b.params, "flops": b.flops, "results": b.results,
                     "section": "Parameter-free methods"})
    section = "Trained" if r.train is not None and r.train.steps else "Evaluated"
    rows.append({"label": r.model.name, "params": r.model.params, "flops": r.model.flops, "results": r.final,
                 "section": section})
    return rows


def _summary(r: Results) -> list[str]:
    m, tr = r.model, r.train
    out = []
    flops, size = m.flops, m.flops_size
    cost = f"{m.params or 0:,} parameters" + (f", {flops / 1e9:.3f} GFLOPs measured at PAN {size}×{size}"
                                              if flops else "")
    out.append(f"Model `{m.name}` ({cost}).")
    data = r.data
    trained = tr is not None and tr.steps
    if trained:
        sps = tr.steps_per_second
        out.append(f"Trained {tr.steps} steps ({tr.epochs:.2f} epochs, batch {tr.batch_size}) "
                   f"on {', '.join(data.get('sensors', []) or [data.get('sensor', '')])} "
                   f"({data.get('bands')} bands) with {tr.world_size} × {tr.device} in "
                   f"{human_time(tr.seconds)}" + (f" ({sps:.2f} steps/s)." if sps else "."))
    best = r.best or {}
    if best.get("value") is not None and trained:
        out.append(f"Best {title(best['metric'], r)} (mean over the reduced-resolution test sets): "
                   f"{fmt(best['metric'], best['value'], r)} at epoch {best.get('epoch', 0)} "
                   f"(step {best.get('step')}), saved as best.pt; the tables show the final weights.")
    return out


def report_markdown(results: Results | dict, figures: list[str]) -> str:
    """report.md's text."""
    meta = as_results(results)
    rows = rows_of(meta)
    parts = [f"# {meta.name or 'panfw run'}", "", " ".join(_summary(meta)), ""]
    rr = metric_tables(rows, "rr", meta)
    if rr:
        parts += ["## Reduced resolution", "",
                  "Per-image means over each test set (PSNR in dB, SAM in degrees), one table per set.", ""]
        for label, table in rr:
            parts += [f"### {label}", "", table, ""]
    fr = metric_tables(rows, "fr", meta)
    if fr:
        parts += ["## Full resolution", "",
                  "No-reference indices; reference metrics too where the data keeps the true "
                  "high-resolution image (synthetic sets); one table per set.", ""]
        for label, table in fr:
            parts += [f"### {label}", "", table, ""]
    if figures:
        parts += ["## Figures", ""]
        for f in figures:
            parts += [f"![{Path(f).stem}]({f})", ""]
    return "\n".join(parts)


def write_results(run_dir: str | Path, results: Results | dict, shown: dict | None = None) -> Path:
    """results.json, the figures and report.md in ``run_dir``; returns report.md's path."""
    results = as_results(results)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results.to_dict(), indent=2, default=_json_default),
                                          encoding="utf-8")
    figures = []
    if (run_dir / "metrics.csv").is_file():
        f = plot_curves(run_dir / "metrics.csv", run_dir / "curves.png", results.best_metric or None,
                        results)
        if f:
            figures.append(f.name)
    for label, images in (shown or {}).items():
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
        f = plot_examples(images, run_dir / f"examples_{safe}.png", label)
        if f:
            figures.append(f.name)
    path = run_dir / "report.md"
    path.write_text(report_markdown(results, figures), encoding="utf-8")
    return path


def write_comparison(sweep_dir: str | Path, name: str, variants: dict[str, Results | dict]) -> str:
    """comparison.md of a sweep: one row per variant, reduced and full resolution; returns its text."""
    rows, meta = [], Results()
    for vname, res in variants.items():
        if not res:
            continue
        r = as_results(res)
        meta.metrics.update(r.metrics)
        rows.append({"label": vname, "params": r.model.params, "flops": r.model.flops, "results": r.final})
    parts = [f"# {name}: sweep comparison", "",
             f"{len(rows)} variants; per-image means of the final weights of each run "
             "(PSNR in dB, SAM in degrees).", ""]
    for res, head in (("rr", "Reduced resolution"), ("fr", "Full resolution")):
        tables = metric_tables(rows, res, meta, sections=False)
        if tables:
            parts += [f"## {head}", ""]
            for label, table in tables:
                parts += [f"### {label}", "", table, ""]
    text = "\n".join(parts)
    Path(sweep_dir, "comparison.md").write_text(text, encoding="utf-8")
    return text


# ---------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(csv_path: Path, out: Path, best_metric: str | None = None, meta: Any = None) -> Path | None:
    """Training loss, learning rate and the evaluation metric against the step."""
    rows = read_metrics_csv(csv_path)
    if not rows:
        return None
    series: dict[str, tuple[list, list]] = {}
    for r in rows:
        xs, ys = series.setdefault(r["key"], ([], []))
        xs.append(r["step"])
        ys.append(r["value"])
    evals = {k: v for k, v in series.items()
             if k.startswith("eval/") and k.endswith(f"/rr/{best_metric}")} if best_metric else {}
    panels = [p for p in ("train/loss", "train/lr") if p in series] + (["eval"] if evals else [])
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        if p == "eval":
            for k, (xs, ys) in evals.items():
                ax.plot(xs, ys, marker="o", ms=3, label=k[len("eval/"):-len(f"/rr/{best_metric}")])
            ax.set_title(f"test {title(best_metric, meta)} (reduced resolution)")
            ax.legend(fontsize=7)
        else:
            xs, ys = series[p]
            ax.plot(xs, ys, lw=1)
            ax.set_title({"train/loss": "training loss", "train/lr": "learning rate"}[p])
            if p == "train/loss" and min(ys) > 0:
                ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def rgb_indices(bands: int, sensor: str = "") -> tuple[int, int, int]:
    """Band indices of red, green, blue: 8-band WorldView order, or B,G,R,NIR for 4 bands."""
    if bands >= 8:
        return (4, 2, 1)
    if bands >= 3:
        return (2, 1, 0)
    return (0, 0, 0)


def true_colour(img: Any, idx: tuple[int, int, int], lo: Any = None, hi: Any = None) -> Any:
    """(C,H,W) tensor -> (H,W,3) numpy in [0,1], stretched between per-channel percentiles 2 and 98
    (``lo``/``hi`` given: the stretch of another image, so renders compare)."""
    import numpy as np

    x = img[list(idx)].detach().float().cpu().numpy().transpose(1, 2, 0)
    if lo is None:
        lo, hi = stretch_limits(img, idx)
    return np.clip((x - lo) / np.maximum(hi - lo, 1e-8), 0, 1)


def stretch_limits(img: Any, idx: tuple[int, int, int]) -> tuple[Any, Any]:
    import numpy as np

    x = img[list(idx)].detach().float().cpu().numpy().reshape(3, -1)
    return np.percentile(x, 2, axis=1), np.percentile(x, 98, axis=1)


def plot_examples(images: list[dict], out: Path, label: str) -> Path | None:
    """One row per image: PAN | upsampled MS | fused | reference | error map (mean |fused - ref| over
    bands); without a reference: PAN | upsampled MS | fused."""
    if not images:
        return None
    import numpy as np

    plt = _plt()
    has_ref = images[0].get("gt") is not None
    cols = ["PAN", "upsampled MS (lms)", "fused"] + (["reference", "|fused − reference|"] if has_ref else [])
    fig, axes = plt.subplots(len(images), len(cols), figsize=(2.6 * len(cols), 2.6 * len(images)),
                             squeeze=False)
    for r, im in enumerate(images):
        idx = rgb_indices(im["fused"].shape[0], im.get("sensor", ""))
        ref = im["gt"] if has_ref else im["lms"]
        lo, hi = stretch_limits(ref, idx)
        pan = im["pan"][0].float().numpy()
        p_lo, p_hi = np.percentile(pan, [2, 98])
        panels = [np.clip((pan - p_lo) / max(p_hi - p_lo, 1e-12), 0, 1),
                  true_colour(im["lms"], idx, lo, hi), true_colour(im["fused"], idx, lo, hi)]
        if has_ref:
            panels.append(true_colour(im["gt"], idx, lo, hi))
            err = (im["fused"].float() - im["gt"].float()).abs().mean(0).numpy()
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
            if c < len(panels):
                ax.imshow(panels[c], cmap="gray" if panels[c].ndim == 2 else None)
            else:
                vmax = float(err.max()) or 1.0
                h = ax.imshow(err, cmap="inferno", vmin=0, vmax=vmax)
                fig.colorbar(h, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(f"{label}: reduced-resolution test images", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
