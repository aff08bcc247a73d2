"""Score a test set with registered metrics: per-image values, then mean, std and count per metric.

    ev = Evaluator(["q2n", "sam", "ergas"], sensor="wv3")       # names, Metric objects, or
    for batch in loader:                                          # {label: options / Metric}
        ev.update(model(batch["lms"], batch["pan"], batch["ms"]), batch)
    ev.compute()   # {"q2n": {"mean": ..., "std": ..., "n": 20}, ...}

Batches are the dataset contract's dicts (``ms``, ``lms``, ``pan``, optional ``gt``, ``sensor`` as a
string or one string per image, optional ``index``). Reference metrics are skipped on batches
without ``gt``; a metric that never received a batch is absent from ``compute()``. Under
``torch.distributed`` (or with an ``all_gather`` hook) ``compute()`` gathers every rank's values,
dropping duplicates of the same ``index`` (DistributedSampler pads the last batch with repeats).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from panfw.errors import UserError

__all__ = ["Evaluator", "group_by_sensor", "summarize"]

MetricSpec = Any  # a registered name, a Metric object, or (name, options)


def group_by_sensor(sensor: Any, n: int) -> list[tuple[Any, torch.Tensor | None]]:
    """Split a batch of ``n`` images by sensor: [(sensor, indices or None for all)].

    ``sensor`` is one sensor (name or Sensor object, or None) for the whole batch, or a sequence of
    one per image (a collated batch)."""
    if sensor is None or isinstance(sensor, str) or not isinstance(sensor, Sequence):
        return [(sensor, None)]
    names = list(sensor)
    if len(names) != n:
        raise UserError(f"{len(names)} sensor names for a batch of {n} images; give one per image or one "
                        "for the whole batch")
    keys = [getattr(s, "name", s) for s in names]
    if len(set(keys)) == 1:
        return [(names[0], None)]
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [(names[idx[0]], torch.tensor(idx)) for idx in groups.values()]


def summarize(values: torch.Tensor) -> dict[str, float | int]:
    """Mean, standard deviation (N-1, as MATLAB's ``std``; 0 for one value) and count."""
    v = values.to(torch.float64).flatten()
    n = int(v.numel())
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = float(v.std()) if n > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "n": n}


def _data_ratio(ms: torch.Tensor, pan: torch.Tensor) -> int | None:
    """PAN size / MS size when it is one integer in both dimensions (else None: the metric decides)."""
    (ph, pw), (mh, mw) = pan.shape[-2:], ms.shape[-2:]
    if mh and mw and ph % mh == 0 and pw % mw == 0 and ph // mh == pw // mw:
        return ph // mh
    return None


def _build_metric(spec: MetricSpec, label: str | None = None) -> tuple[str, Any]:
    """(label, metric) from a Metric object, a registered name, (name, options), or, under a label,
    an options dict (its "name" key, default the label, picks the metric)."""
    import panfw

    if callable(spec) and hasattr(spec, "kind"):
        metric = spec
    elif isinstance(spec, str):
        metric = panfw.create_metric(spec)
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        metric = panfw.create_metric(spec[0], **dict(spec[1]))
    elif isinstance(spec, Mapping) and label is not None:
        opts = dict(spec)
        metric = panfw.create_metric(opts.pop("name", label), **opts)
    else:
        raise UserError(f"cannot use {spec!r} as a metric: give a registered name, a Metric object, "
                        "(name, options) or {label: options}")
    if getattr(metric, "kind", None) not in ("reference", "no_reference"):
        raise UserError(f"metric {getattr(metric, 'name', metric)!r} has kind {getattr(metric, 'kind', None)!r}; "
                        "accepted: reference, no_reference")
    return label or metric.name, metric


class Evaluator:
    """Accumulates per-image metric values over a test set; see the module docstring."""

    def __init__(self, metrics: Iterable[MetricSpec] | Mapping[str, Any], sensor: Any = None, *,
                 all_gather: Callable[[Any], list] | None = None, nan: str = "propagate") -> None:
        if nan not in ("propagate", "omit"):
            raise UserError(f"Evaluator nan={nan!r} is not accepted; accepted: propagate, omit")
        if isinstance(metrics, Mapping):
            built = [_build_metric(spec, label) for label, spec in metrics.items()]
        else:
            built = [_build_metric(spec) for spec in metrics]
        labels = [label for label, _ in built]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise UserError(f"metric label(s) {', '.join(dup)} given twice; pass a mapping {{label: metric}} "
                            "to score variants of one metric")
        self.metrics: dict[str, Any] = dict(built)
        self.sensor = sensor
        self.all_gather = all_gather
        self.nan = nan
        self.reset()

    def reset(self) -> None:
        """Forget every value seen so far."""
        self._values: dict[str, list[torch.Tensor]] = {k: [] for k in self.metrics}
        self._index: dict[str, list[torch.Tensor]] = {k: [] for k in self.metrics}

    @torch.no_grad()
    def update(self, fused: torch.Tensor, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Score one batch; returns this batch's per-image values {label: (B,) float64 on CPU}."""
        if fused.dim() == 3:
            fused = fused[None]
        n = fused.shape[0]
        dev = fused.device

        def get(key: str) -> torch.Tensor | None:
            t = batch.get(key)
            if t is None:
                return None
            t = torch.as_tensor(t)
            return (t[None] if t.dim() == 3 else t).to(dev)

        gt, ms, lms, pan = get("gt"), get("ms"), get("lms"), get("pan")
        index = batch.get("index")
        index = None if index is None else torch.as_tensor(index).reshape(-1).cpu()
        sensors = batch.get("sensor", None)
        if sensors is None:
            sensors = self.sensor
        out: dict[str, torch.Tensor] = {}
        # per sensor group: its images (selected once) and a cache shared by the metrics scoring them
        groups = []
        for sensor, idx in group_by_sensor(sensors, n):
            ix = None if idx is None else idx.to(dev)
            images = {k: (t if t is None or ix is None else t[ix])
                      for k, t in (("fused", fused), ("gt", gt), ("ms", ms), ("lms", lms), ("pan", pan))}
            groups.append((sensor, idx, images, {}))
        for label, metric in self.metrics.items():
            if metric.kind == "reference" and gt is None:
                continue
            if metric.kind == "no_reference" and (pan is None or (ms is None and lms is None)):
                raise UserError(f"metric {label!r} needs 'pan' and 'ms' (or 'lms') in the batch; "
                                f"the batch has {sorted(k for k in batch if batch[k] is not None)}")
            values = torch.empty(n, dtype=torch.float64)
            for sensor, idx, im, cache in groups:
                kw: dict[str, Any] = {"sensor": sensor}
                if getattr(metric, "accepts_cache", False):
                    kw["cache"] = cache
                if getattr(metric, "accepts_ratio", False) and im["ms"] is not None and im["pan"] is not None:
                    kw["ratio"] = _data_ratio(im["ms"], im["pan"])  # the data's, never a sensor's default
                if metric.kind == "reference":
                    v = metric(im["fused"], im["gt"], **kw)
                else:
                    v = metric(im["fused"], im["ms"], im["pan"], lms=im["lms"], **kw)
                v = torch.as_tensor(v).detach().to("cpu", torch.float64).reshape(-1)
                if idx is None:
                    values.copy_(v)
                else:
                    values[idx] = v
            out[label] = values
            self._values[label].append(values)
            if index is not None:
                self._index[label].append(index)
        return out

    def _gather(self, obj: Any) -> list:
        if self.all_gather is not None:
            return list(self.all_gather(obj))
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, obj)
            return gathered
        return [obj]

    def values(self) -> dict[str, torch.Tensor]:
        """Per-image values of every metric that was computed, gathered across processes (collective
        under torch.distributed: call it on every rank); ordered by ``index`` when batches carried one."""
        local = {}
        for label in self.metrics:
            vals = torch.cat(self._values[label]) if self._values[label] else torch.empty(0, dtype=torch.float64)
            idx = (torch.cat(self._index[label]) if self._index[label]
                   and len(self._index[label]) == len(self._values[label]) else None)
            local[label] = (vals, idx)
        parts = self._gather(local)
        result = {}
        for label in self.metrics:
            vals = [p[label][0] for p in parts]
            idxs = [p[label][1] for p in parts]
            v = torch.cat(vals)
            if v.numel() == 0:
                continue
            if all(i is not None for i in idxs):
                ind = torch.cat(idxs)
                _, first = _first_occurrence(ind)
                v = v[first]
            result[label] = v
        return result

    def compute(self) -> dict[str, dict[str, float | int]]:
        """{label: {"mean", "std", "n"}} over every image seen (all processes)."""
        out = {}
        for label, v in self.values().items():
            if self.nan == "omit":
                v = v[~torch.isnan(v)]
            out[label] = summarize(v)
        return out


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique values of ``index`` and the position of each one's first occurrence."""
    order = torch.argsort(index, stable=True)
    sorted_idx = index[order]
    keep = torch.ones_like(sorted_idx, dtype=torch.bool)
    keep[1:] = sorted_idx[1:] != sorted_idx[:-1]
    return sorted_idx[keep], order[keep]
