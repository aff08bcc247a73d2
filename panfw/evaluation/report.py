"""Run reports: ``results.json``, ``report.md`` with tables in the layout of the PanTiny paper's
Table 1 (parameters, FLOPs, per-dataset metrics; best in bold, second underlined), PNG figures
(training curves; upsampled MS | fused | reference | error map, true colour), and a sweep's
comparison table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TITLES = {"psnr": "PSNR", "ssim": "SSIM", "sam": "SAM", "ergas": "ERGAS", "q2n": "Q2n", "q": "Q",
          "scc": "SCC", "d_lambda": "D_λ", "d_s": "D_s", "qnr": "QNR", "hqnr": "HQNR",
          "d_lambda_k": "D_λ^K"}
DECIMALS = {"psnr": 2, "sam": 3, "ergas": 3}


def title(metric: str) -> str:
    return TITLES.get(metric, metric)


def fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{DECIMALS.get(metric, 4)}f}"


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


def metric_table(rows: list[dict], res: str, meta: dict, sections: bool = True) -> str:
    """A Markdown table: Model | Params (K) | FLOPs (G) | <set> <metric><arrow> ...

    ``rows``: dicts with label, params, flops, results ({set: {rr|fr: {metric: {mean,...}}}}) and
    an optional section heading; the best value of each column is bold, the second underlined."""
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
        higher = meta.get(m, {}).get("higher_is_better", m not in ("sam", "ergas", "d_lambda", "d_s",
                                                                     "d_lambda_k"))
        shown = {i: fmt(m, v[c]) for i, v in enumerate(values) if v[c] is not None and not math.isnan(v[c])}
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
        if m not in meta and m not in TITLES:
            return ""
        higher = meta.get(m, {}).get("higher_is_better", m not in ("sam", "ergas", "d_lambda", "d_s",
                                                                     "d_lambda_k"))
        return "↑" if higher else "↓"

    head = ["Model", "Params (K)", "FLOPs (G)"] + [f"{label} {title(m)}{arrow(m)}" for label in labels
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
            text = fmt(metrics[c % len(metrics)], v)
            if mk.get(c) == "bold":
                text = f"**{text}**"
            elif mk.get(c) == "under":
                text = f"<u>{text}</u>"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_of(results: dict) -> list[dict]:
    """The report rows of one run: its parameter-free baselines, then the model."""
    rows = []
    for name, b in results.get("baselines", {}).items():
        rows.append({"label": name, "params": b.get("params"), "flops": b.get("flops"),
                     "results": b["results"], "section": "Parameter-free methods"})
    model = results.get("model", {})
    label = model.get("name", "model")
    section = "Trained" if results.get("train", {}).get("steps") else "Evaluated"
    rows.append({"label": label, "params": model.get("params"), "flops": model.get("flops"),
                 "results": results.get("final", {}), "section": section})
    return rows


def _summary(results: dict) -> list[str]:
    from panfw.engine.runlog import human_time

    m = results.get("model", {})
    tr = results.get("train", {})
    out = []
    flops = m.get("flops")
    size = m.get("flops_size", 128)
    cost = f"{m.get('params', 0):,} parameters" + (f", {flops / 1e9:.3f} GFLOPs measured at PAN {size}×{size}"
                                                    if flops else "")
    out.append(f"Model `{m.get('name')}` ({cost}).")
    data = results.get("data", {})
    if tr.get("steps"):
        sps = tr.get("steps_per_second")
        out.append(f"Trained {tr['steps']} steps ({tr.get('epochs', 0):.2f} epochs, batch {tr.get('batch_size')}) "
                   f"on {', '.join(data.get('sensors', []) or [data.get('sensor', '')])} "
                   f"({data.get('bands')} bands) with {tr.get('world_size', 1)} × {tr.get('device')} in "
                   f"{human_time(tr.get('seconds', 0))}" + (f" ({sps:.2f} steps/s)." if sps else "."))
    best = results.get("best") or {}
    if best.get("value") is not None and tr.get("steps"):
        out.append(f"Best {title(best['metric'])} (mean over the reduced-resolution test sets): "
                   f"{fmt(best['metric'], best['value'])} at epoch {best.get('epoch', 0)} "
                   f"(step {best.get('step')}), saved as best.pt; the tables show the final weights.")
    return out


def report_markdown(results: dict, figures: list[str]) -> str:
    """report.md's text."""
    meta = results.get("metrics", {})
    rows = rows_of(results)
    parts = [f"# {results.get('name', 'panfw run')}", "", " ".join(_summary(results)), ""]
    rr = metric_table(rows, "rr", meta)
    if rr:
        parts += ["## Reduced resolution", "",
                  "Per-image means over each test set (PSNR in dB, SAM in degrees).", "", rr, ""]
    fr = metric_table(rows, "fr", meta)
    if fr:
        parts += ["## Full resolution", "",
                  "No-reference indices; reference metrics too where the data keeps the true "
                  "high-resolution image (synthetic sets).", "", fr, ""]
    if figures:
        parts += ["## Figures", ""]
        for f in figures:
            parts += [f"![{Path(f).stem}]({f})", ""]
    return "\n".join(parts)


def write_results(run_dir: str | Path, results: dict, shown: dict | None = None) -> Path:
    """results.json, the figures and report.md in ``run_dir``; returns report.md's path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=_json_default),
                                          encoding="utf-8")
    figures = []
    if (run_dir / "metrics.csv").is_file():
        f = plot_curves(run_dir / "metrics.csv", run_dir / "curves.png", results.get("best_metric"))
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


def write_comparison(sweep_dir: str | Path, name: str, variants: dict[str, dict]) -> str:
    """comparison.md of a sweep: one row per variant, reduced and full resolution; returns its text."""
    rows, meta = [], {}
    for vname, res in variants.items():
        if not res:
            continue
        meta.update(res.get("metrics", {}))
        m = res.get("model", {})
        rows.append({"label": vname, "params": m.get("params"), "flops": m.get("flops"),
                     "results": res.get("final", {})})
    parts = [f"# {name}: sweep comparison", "",
             f"{len(rows)} variants; per-image means of the final weights of each run "
             "(PSNR in dB, SAM in degrees).", ""]
    for res, head in (("rr", "Reduced resolution"), ("fr", "Full resolution")):
        table = metric_table(rows, res, meta, sections=False)
        if table:
            parts += [f"## {head}", "", table, ""]
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


def plot_curves(csv_path: Path, out: Path, best_metric: str | None = None) -> Path | None:
    """Training loss, learning rate and the evaluation metric against the step."""
    from panfw.engine.runlog import read_metrics_csv

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
            ax.set_title(f"test {title(best_metric)} (reduced resolution)")
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
    """One row per image: upsampled MS | fused | reference | error map (mean |fused - ref| over bands)."""
    if not images:
        return None
    plt = _plt()
    has_ref = images[0].get("gt") is not None
    cols = ["upsampled MS (lms)", "fused", "reference"] + (["|fused − reference|"] if has_ref else [])
    if not has_ref:
        cols = ["upsampled MS (lms)", "fused", "PAN"]
    fig, axes = plt.subplots(len(images), len(cols), figsize=(2.6 * len(cols), 2.6 * len(images)),
                             squeeze=False)
    for r, im in enumerate(images):
        idx = rgb_indices(im["fused"].shape[0], im.get("sensor", ""))
        ref = im["gt"] if has_ref else im["lms"]
        lo, hi = stretch_limits(ref, idx)
        panels = [true_colour(im["lms"], idx, lo, hi), true_colour(im["fused"], idx, lo, hi)]
        if has_ref:
            panels.append(true_colour(im["gt"], idx, lo, hi))
            err = (im["fused"].float() - im["gt"].float()).abs().mean(0).numpy()
        else:
            panels.append(im["pan"][0].numpy())
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
