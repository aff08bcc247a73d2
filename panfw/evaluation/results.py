"""One results schema, written by training and by ``panfw eval`` and read by the report.

``results.json`` is ``Results.to_dict()``; ``Results.from_dict`` reads it back (older files too:
missing parts get their defaults). Scores are nested plain data::

    final[label] = {"sensor": str, "rr": {metric: {"mean", "std", "n"}}, "fr": {...},
                    "rr_seconds_per_image": float, "fr_seconds_per_image": float}

Metric presentation (title, decimals, better direction, kind) comes from the metric registry's
metadata (``metric_meta``) and is stored with the results, so a report can be rebuilt without the
plugin that provided the metric.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Baseline", "MetricMeta", "ModelInfo", "Results", "TrainInfo", "human_time", "metric_meta",
           "read_metrics_csv"]

CSV_FIELDS = ("step", "epoch", "key", "value")  # metrics.csv, long format


@attrs.define
class MetricMeta:
    """How a metric is shown: from its registration (``title``, ``decimals``, ``higher_is_better``,
    ``kind``); a third-party metric without them gets its name, 4 decimals and its object's flags."""

    kind: str = "reference"
    higher_is_better: bool = True
    title: str = ""
    decimals: int = 4

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def metric_meta(names: list[str]) -> dict[str, MetricMeta]:
    """Name -> MetricMeta from the metric registry (the object's own attributes fill what the
    registration lacks)."""
    import panfw

    out = {}
    for name in names:
        entry = panfw.registry("metrics").get(name)
        meta = dict(entry.meta)
        if "kind" not in meta or "higher_is_better" not in meta:
            m = panfw.create_metric(name)
            meta.setdefault("kind", getattr(m, "kind", "reference"))
            meta.setdefault("higher_is_better", getattr(m, "higher_is_better", True))
        out[name] = MetricMeta(kind=str(meta["kind"]), higher_is_better=bool(meta["higher_is_better"]),
                               title=str(meta.get("title") or name), decimals=int(meta.get("decimals", 4)))
    return out


@attrs.define
class ModelInfo:
    """The scored model: registered name, factory options, trainable parameters, measured FLOPs."""

    name: str = "model"
    options: dict = attrs.field(factory=dict)
    params: int | None = None
    flops: int | None = None
    flops_size: int = 128


@attrs.define
class TrainInfo:
    """How a model was trained (absent for ``panfw eval``)."""

    steps: int = 0
    epochs: float = 0.0
    steps_per_epoch: int = 0
    batch_size: int = 0
    world_size: int = 1
    device: str = "cpu"
    seconds: float = 0.0
    steps_per_second: float | None = None
    steps_this_process: int = 0


@attrs.define
class Baseline:
    """A parameter-free method scored beside the model."""

    results: dict = attrs.field(factory=dict)
    params: int | None = 0
    flops: int | None = None
    flops_size: int = 128


@attrs.define
class Results:
    """A run's (or an evaluation's) results; see the module docstring."""

    name: str = ""
    model: ModelInfo = attrs.field(factory=ModelInfo)
    final: dict = attrs.field(factory=dict)
    metrics: dict[str, MetricMeta] = attrs.field(factory=dict)
    data: dict = attrs.field(factory=dict)
    train: TrainInfo | None = None
    best_metric: str = ""
    best: dict = attrs.field(factory=dict)
    baselines: dict[str, Baseline] = attrs.field(factory=dict)
    run_dir: str = ""
    source: str = ""  # what ``panfw eval`` scored (a checkpoint, a run directory, a model name)

    def to_dict(self) -> dict:
        """results.json's content."""
        out: dict[str, Any] = {"name": self.name}
        if self.run_dir:
            out["run_dir"] = self.run_dir
        if self.source:
            out["source"] = self.source
        out.update({
            "model": attrs.asdict(self.model), "data": dict(self.data),
            "train": attrs.asdict(self.train) if self.train is not None else {},
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "best_metric": self.best_metric, "best": dict(self.best), "final": self.final,
            "baselines": {k: attrs.asdict(v) for k, v in self.baselines.items()},
        })
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        """Read ``to_dict`` output back (unknown keys are ignored, missing ones get defaults)."""
        def pick(klass: type, d: dict | None) -> dict:
            names = {f.name for f in attrs.fields(klass)}
            return {k: v for k, v in (d or {}).items() if k in names}

        metrics = {}
        for k, v in (data.get("metrics") or {}).items():
            m = MetricMeta(**pick(MetricMeta, v))
            if not (v or {}).get("title"):  # written before metrics had titles: ask the registry
                try:
                    known = metric_meta([k])[k]
                    m.title, m.decimals = known.title, known.decimals
                except Exception:  # noqa: BLE001 - its plugin is gone: the name, 4 decimals
                    m.title = k
            metrics[k] = m
        train = data.get("train") or None
        return cls(name=data.get("name", ""), model=ModelInfo(**pick(ModelInfo, data.get("model"))),
                   final=data.get("final") or {}, metrics=metrics, data=data.get("data") or {},
                   train=TrainInfo(**pick(TrainInfo, train)) if train else None,
                   best_metric=data.get("best_metric", ""), best=data.get("best") or {},
                   baselines={k: Baseline(**pick(Baseline, v)) for k, v in (data.get("baselines") or {}).items()},
                   run_dir=data.get("run_dir", ""), source=data.get("source", ""))

    def meta(self, metric: str) -> MetricMeta:
        """A metric's presentation: stored, else from the registry, else the name and 4 decimals."""
        if metric in self.metrics:
            return self.metrics[metric]
        try:
            return metric_meta([metric])[metric]
        except Exception:  # noqa: BLE001 - a report of a metric whose plugin is gone still renders
            return MetricMeta(title=metric)


def human_time(seconds: float) -> str:
    """'1h02m', '3m20s', '12s'."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Rows of a run's metrics.csv as dicts with int step/epoch and float value."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{"step": int(r["step"]), "epoch": int(r["epoch"]), "key": r["key"], "value": float(r["value"])}
                for r in csv.DictReader(f)]
