"""Scoring models on test sets (the evaluation loop shared by training and ``panfw eval``):
reduced resolution (reference metrics) and full resolution (no-reference metrics, plus reference
metrics where the set keeps a true high-resolution image)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from panfw.engine.data import TestSet, eval_batch_size, iterate_batches

__all__ = ["baseline_cost", "baseline_model", "evaluate", "format_scores", "mean_over_sets"]


def _evaluator(names: list[str], sensor: str, dataset: Any = None) -> Any:
    import math

    import panfw
    from panfw.evaluation import Evaluator
    from panfw.sensors import get_sensor

    # a set whose digital numbers are not the sensor's (a TIFF folder of 16-bit data of an 11-bit sensor,
    # scale=65535) is scored on its own DN scale: the metrics get its bit depth
    specs: list[Any] = list(names)
    scale = getattr(dataset, "scale", None)
    if isinstance(scale, int | float) and scale > 1:
        bits = math.log2(float(scale) + 1)
        try:
            own = get_sensor(sensor).bit_depth if sensor else None
        except Exception:  # noqa: BLE001 - an unknown sensor name is the metric's to report
            own = None
        if bits.is_integer() and int(bits) != own:
            specs = [(n, {"bit_depth": int(bits)}) if "bit_depth" in panfw.registry("metrics").get(n).options
                     else n for n in names]
    # one process scores the whole set (rank 0 under torchrun): no gathering across ranks
    return Evaluator(specs, sensor, all_gather=lambda obj: [obj])


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model_for: Callable[[TestSet], Any], test_sets: list[TestSet],
             rr_metrics: list[str], fr_metrics: list[str], device: torch.device,
             examples: int = 0, progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """Score ``model_for(test_set)`` on every test set.

    Returns ``(results, shown)``: results[label][resolution][metric] = {mean, std, n} (plus
    ``<resolution>_seconds_per_image``), and shown[label] = up to ``examples`` reduced-resolution
    images as CPU tensors (lms, fused, gt, pan, sensor) for the report's figures. Random-number
    states are untouched.
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
            ev = _evaluator(names, ts.sensor, ts.dataset)
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


def baseline_model(name: str, ts: Any) -> Any:
    """A parameter-free model for one test set, built with that set's sensor, bands and ratio (each
    passed where the factory declares it)."""
    import panfw

    model = panfw.create_model(name, context={"bands": ts.bands, "sensor": ts.sensor, "ratio": ts.ratio})
    return model.eval() if isinstance(model, torch.nn.Module) else model


def baseline_cost(name: str, bands: int, ratio: int) -> dict:
    """Parameters and measured FLOPs of a parameter-free model (for the report's columns)."""
    from types import SimpleNamespace

    from panfw.evaluation.cost import model_cost

    model = baseline_model(name, SimpleNamespace(bands=bands, sensor="generic", ratio=ratio))
    return model_cost(model, bands=bands, ratio=ratio)
