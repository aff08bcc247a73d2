"""Scoring models on test sets: reduced resolution (reference metrics) and full resolution
(no-reference metrics, plus reference metrics where the set keeps a true high-resolution image)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from panfw.engine.data import TestSet, eval_batch_size, iterate_batches

METRIC_KEYS = ("ms", "lms", "pan", "gt")


def metric_info(names: list[str]) -> dict[str, dict]:
    """Name -> {kind, higher_is_better} for the report's arrows and the best-checkpoint choice."""
    import panfw

    out = {}
    for name in names:
        m = panfw.create_metric(name)
        out[name] = {"kind": str(getattr(m, "kind", "reference")),
                     "higher_is_better": bool(getattr(m, "higher_is_better", True))}
    return out


def _evaluator(names: list[str], sensor: str) -> Any:
    from panfw.evaluation import Evaluator

    # one process scores the whole set (rank 0 under torchrun): no gathering across ranks
    return Evaluator(names, sensor, all_gather=lambda obj: [obj])


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model_for: Callable[[TestSet], torch.nn.Module], test_sets: list[TestSet],
             rr_metrics: list[str], fr_metrics: list[str], device: torch.device,
             examples: int = 0, progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Score ``model_for(test_set)`` on every test set.

    Returns ``(results, shown)``: results[label][resolution][metric] = {mean, std, n} (plus
    ``seconds_per_image``), and shown[label] = up to ``examples`` reduced-resolution images as CPU
    tensors (lms, fused, gt, sensor) for the report's figures. Random-number states are untouched.
    """
    results: dict[str, dict] = {}
    shown: dict[str, list[dict]] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for ts in test_sets:
            if len(ts.dataset) == 0:
                continue
            model = model_for(ts)
            first = ts.dataset[0]
            names = list(rr_metrics) if ts.resolution == "rr" else list(fr_metrics)
            if ts.resolution == "fr" and "gt" in first:
                names = names + [m for m in rr_metrics if m not in names]
            ev = _evaluator(names, ts.sensor)
            bs = eval_batch_size(first)
            t0, n_img = time.perf_counter(), 0
            for batch in iterate_batches(ts.dataset, bs):
                b = _to(batch, device)
                fused = model(b["lms"], b["pan"], b["ms"]).float()
                ev.update(fused, b)
                n_img += fused.shape[0]
                if ts.resolution == "rr" and examples and len(shown.get(ts.label, [])) < examples:
                    keep = shown.setdefault(ts.label, [])
                    for i in range(min(fused.shape[0], examples - len(keep))):
                        keep.append({"lms": batch["lms"][i].float(), "fused": fused[i].cpu(),
                                     "gt": batch["gt"][i].float() if "gt" in batch else None,
                                     "pan": batch["pan"][i].float(), "sensor": ts.sensor})
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            scores = ev.compute()
            entry = results.setdefault(ts.label, {"sensor": ts.sensor})
            entry[ts.resolution] = {k: {kk: float(vv) for kk, vv in v.items()} for k, v in scores.items()}
            entry[f"{ts.resolution}_seconds_per_image"] = (time.perf_counter() - t0) / max(1, n_img)
            if progress:
                progress(f"{ts.label} {ts.resolution.upper()}: " + format_scores(entry[ts.resolution]))
    return results, shown


def format_scores(scores: dict) -> str:
    """'psnr 38.12  sam 2.345 ...' for a log line."""
    return "  ".join(f"{k} {v['mean']:.4g}" for k, v in scores.items())


def mean_over_sets(results: dict, metric: str, resolution: str = "rr") -> float | None:
    """The mean of a metric over the test sets (how the best checkpoint is chosen, as the paper did)."""
    vals = [r[resolution][metric]["mean"] for r in results.values()
            if resolution in r and metric in r[resolution]]
    vals = [v for v in vals if v == v]  # drop NaN
    return sum(vals) / len(vals) if vals else None


def parse_data_option(text: str) -> Any:
    """``NAME[:key=value,...]`` (values in TOML syntax) -> a DatasetSpec."""
    from panfw.config.recipe import DatasetSpec, parse_value
    from panfw.errors import UserError

    name, _, rest = text.partition(":")
    options: dict = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--data {text!r}: {item!r} is not key=value (e.g. --data synthetic:sensor=wv3,n=8)")
        options[key.strip()] = parse_value(raw.strip())
    if not name.strip():
        raise UserError(f"--data {text!r}: no dataset name (e.g. --data wv3 or --data synthetic:sensor=gf2)")
    return DatasetSpec(name=name.strip(), options=options)


def score(spec: str, data: list[Any] | None = None, *, root: str = "", rr_metrics: list[str] | None = None,
          fr_metrics: list[str] | None = None, baselines: list[str] | None = None, max_images: int = 0,
          figures: int = 3, out_dir: str | None = None, device: str = "auto",
          echo: Callable[[str], None] = print) -> dict:
    """``panfw eval``: score a checkpoint, a run directory or a registered (parameter-free) model on
    test sets, with the baselines beside it; writes results.json and report.md to ``out_dir``."""
    import datetime
    from pathlib import Path

    import panfw
    from panfw.config.recipe import EvalSpec, structure
    from panfw.describe import measure_flops
    from panfw.engine.data import build_test_sets
    from panfw.engine.distributed import pick_device
    from panfw.engine.trainer import FIGURE_SIZE, baseline_cost, baseline_model
    from panfw.errors import UserError
    from panfw.evaluation.report import metric_table, rows_of, write_results
    from panfw.io.checkpoint import load_model

    dev = pick_device(device)
    p = Path(spec)
    is_ckpt = p.suffix in (".pt", ".pth") or p.exists()
    state: dict = {}
    model = None
    if is_ckpt:
        model, state = load_model(p, map_location="cpu")
        model = model.to(dev).eval()
    elif spec not in panfw.registry("models"):
        load_model(spec)  # raises the UserError naming what is accepted
    recipe = structure(state["recipe"], {}, str(p)) if state.get("recipe") else None
    ev = recipe.eval if recipe else EvalSpec()
    rr = list(rr_metrics or ev.rr_metrics)
    fr = list(fr_metrics or ev.fr_metrics)
    specs = list(data or [])
    if not specs and recipe is not None:
        specs = list(recipe.data.test or recipe.data.train)
        root = root or recipe.data.root
    if not specs:
        raise UserError("panfw eval: give the test data, e.g. --data wv3 or --data synthetic:sensor=gf2")
    test_sets = build_test_sets(specs, root, max_images=max_images)
    label = state["model"]["name"] if state else spec
    if model is not None:
        name = state["model"]["name"]
        bands = int(state["model"].get("options", {}).get("bands") or test_sets[0].bands)
        ratio = int((state.get("data") or {}).get("ratio") or test_sets[0].ratio)
        params = sum(t.numel() for t in model.parameters() if t.requires_grad)
        try:
            flops = measure_flops(model.cpu(), bands=bands, size=FIGURE_SIZE, ratio=ratio)
        except Exception:  # noqa: BLE001
            flops = None
        model = model.to(dev).eval()

        def model_for(ts: TestSet, m: Any = model) -> Any:
            return m
        cost = {"params": params, "flops": flops, "flops_size": FIGURE_SIZE}
    else:
        name = spec
        cost = baseline_cost(spec, test_sets[0].bands, test_sets[0].ratio)
        if cost["params"]:
            echo(f"note: {spec} has {cost['params']:,} untrained parameters (give a checkpoint to score "
                 "trained weights)")
        def model_for(ts: TestSet) -> Any:
            return baseline_model(spec, ts).to(dev)
    meta = metric_info(rr + fr)
    final, shown = evaluate(model_for, test_sets, rr, fr, dev, examples=figures,
                            progress=lambda s: echo(f"  {label} {s}"))
    base_results = {}
    for b in baselines or []:
        res, _ = evaluate(lambda ts, n=b: baseline_model(n, ts).to(dev), test_sets, rr, fr, dev)
        base_results[b] = {"results": res, **baseline_cost(b, test_sets[0].bands, test_sets[0].ratio)}
    results = {"name": f"panfw eval {label}", "source": str(spec),
               "model": {"name": name, **cost}, "data": state.get("data", {}), "train": {},
               "metrics": meta, "best_metric": ev.best, "final": final, "baselines": base_results}
    if out_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = (p.parent if p.is_file() else p) if is_ckpt else Path("runs") / "eval" / spec
        out = run_dir / "eval" / stamp if is_ckpt else run_dir / stamp
    else:
        out = Path(out_dir)
    report = write_results(out, results, shown)
    rows = rows_of(results)
    for res, head in (("rr", "reduced resolution"), ("fr", "full resolution")):
        table = metric_table(rows, res, meta)
        if table:
            echo(f"\n{head}:\n{table}")
    echo(f"\nreport: {report}")
    return results
