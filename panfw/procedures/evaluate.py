"""The evaluation procedure (``panfw eval``): score a checkpoint, a run directory or a registered
(parameter-free) model on test sets, with baselines beside it, into results.json and report.md."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from panfw.config.recipe import DatasetSpec, EvalSpec, parse_value, structure
from panfw.engine.data import TestSet, build_test_sets
from panfw.engine.distributed import pick_device
from panfw.engine.evaluate import baseline_cost, baseline_model, evaluate
from panfw.errors import UserError
from panfw.evaluation.cost import model_cost
from panfw.evaluation.results import Baseline, ModelInfo, Results, metric_meta

__all__ = ["EvaluateProcedure", "parse_data_option", "score"]


def parse_data_option(text: str) -> DatasetSpec:
    """``NAME[:key=value,...]`` (values in TOML syntax) -> a DatasetSpec."""
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


class EvaluateProcedure:
    """``setup()`` (model, test sets, metrics), ``run()`` (scores, baselines), ``save()`` (report)."""

    def __init__(self, spec: str, data: list[DatasetSpec] | None = None, *, root: str = "",
                 rr_metrics: list[str] | None = None, fr_metrics: list[str] | None = None,
                 baselines: list[str] | None = None, max_images: int = 0, figures: int = 3,
                 out_dir: str | None = None, device: str = "auto", echo: Callable[[str], None] = print,
                 backend: str | None = None) -> None:
        self.spec, self.data, self.root = spec, list(data or []), root
        self.backend = backend  # a registered runtime (panfw.inference); None: the model as it is
        self.rr_arg, self.fr_arg = rr_metrics, fr_metrics
        self.baseline_names = list(baselines or [])
        self.max_images, self.figures, self.out_dir, self.echo = max_images, figures, out_dir, echo
        self.device = pick_device(device)
        self.results: Results | None = None
        self.shown: dict = {}

    def setup(self) -> EvaluateProcedure:
        """Resolve the model (``panfw.io.resolve``: checkpoint, run directory, exported file or
        registered name), its recipe's metrics and test sets, and its cost."""
        import panfw
        from panfw.io.resolve import resolve_model

        spec, dev = self.spec, self.device
        p = Path(spec)
        self.path = p
        registered = spec in panfw.registry("models") and not p.exists()
        self.is_ckpt = not registered
        resolved = None if registered else resolve_model(spec, device=str(dev))
        state: dict = (resolved.checkpoint or {}) if resolved is not None else {}
        self.state = state
        recipe = structure(state["recipe"], {}, str(p)) if state.get("recipe") else None
        ev = recipe.eval if recipe else EvalSpec()
        self.best_metric = ev.best
        self.rr = list(self.rr_arg or ev.rr_metrics)
        self.fr = list(self.fr_arg or ev.fr_metrics)
        specs = list(self.data)
        root = self.root
        if not specs and recipe is not None:
            specs = list(recipe.data.test or recipe.data.train)
            root = root or recipe.data.root
        if not specs:
            raise UserError("panfw eval: give the test data, e.g. --data wv3 or --data synthetic:sensor=gf2")
        self.test_sets = build_test_sets(specs, root, max_images=self.max_images)
        self.out = self._out_dir()  # before any scoring: an unwritable -o fails in seconds, not after it
        if resolved is not None and resolved.bands:  # before any image: never a raw convolution error
            for ts in self.test_sets:
                if ts.bands != resolved.bands:
                    raise UserError(f"{spec}: the model takes {resolved.bands} bands but test set {ts.label!r} "
                                    f"({ts.sensor}) has {ts.bands}; give test data with {resolved.bands} bands "
                                    f"(--data NAME[:bands=...]) or a model for {ts.bands}")
        self.label = resolved.name if resolved is not None else spec
        if resolved is not None:
            model = resolved.model_or_runtime
            bands = int(resolved.bands or self.test_sets[0].bands)
            ratio = int(resolved.data.get("ratio") or self.test_sets[0].ratio)
            if isinstance(model, torch.nn.Module):
                cost = model_cost(model.cpu(), bands=bands, ratio=ratio)
                model = self._runtime(model.to(dev).eval(), bands, ratio, resolved)
            else:  # an exported file's runtime: no parameters to count, no FLOPs to trace
                cost = {"params": None, "flops": None}
            self.model_for: Callable[[TestSet], Any] = lambda ts, m=model: m
            self.info = ModelInfo(name=resolved.name, options=dict(resolved.options), **cost)
        else:
            cost = baseline_cost(spec, self.test_sets[0].bands, self.test_sets[0].ratio)
            if cost["params"]:
                self.echo(f"note: {spec} has {cost['params']:,} untrained parameters (give a checkpoint to "
                          "score trained weights)")
            self.model_for = lambda ts: self._runtime(baseline_model(spec, ts).to(dev), ts.bands, ts.ratio)
            self.info = ModelInfo(name=spec, **cost)
        return self

    def _runtime(self, model: Any, bands: int, ratio: int, resolved: Any = None) -> Any:
        """The model wrapped in runtime ``--backend``, else in the fastest here for it
        (``panfw.inference.auto.choose_backend``; eager torch: the model as it is)."""
        from panfw.inference.build import build_runtime, largest_image

        backend, why, options = self.backend, "--backend", {}
        if not backend:
            from panfw.inference.auto import choose_backend, graph_cache

            source = getattr(resolved, "source", None)
            backend, why = choose_backend(model, str(self.device), getattr(resolved, "name", None), source)
            if backend == "torch":
                if resolved is not None:
                    self.echo(f"runtime: torch on {self.device} ({why}; --backend chooses another)")
                return model
            options["cache_dir"] = graph_cache(source, getattr(resolved, "options", None))
        size = largest_image(self.test_sets)
        rt = build_runtime(backend, model, device=str(self.device),
                           context={"bands": bands, "ratio": ratio, "size": size, "max_size": max(size, 2048)},
                           **options)
        self.echo(f"runtime: {rt.name} on {rt.device} ({why})")
        return rt

    def run(self) -> Results:
        dev, ts = self.device, self.test_sets
        final, self.shown = evaluate(self.model_for, ts, self.rr, self.fr, dev, examples=self.figures,
                                     progress=lambda s: self.echo(f"  {self.label} {s}"))
        baselines = {}
        for b in self.baseline_names:
            res, _ = evaluate(lambda t, n=b: baseline_model(n, t).to(dev), ts, self.rr, self.fr, dev)
            baselines[b] = Baseline(results=res, **baseline_cost(b, ts[0].bands, ts[0].ratio))
        self.results = Results(name=f"panfw eval {self.label}", source=str(self.spec), model=self.info,
                               data=self.state.get("data", {}), metrics=metric_meta(self.rr + self.fr),
                               best_metric=self.best_metric, final=final, baselines=baselines)
        return self.results

    def _out_dir(self) -> Path:
        """The report folder (-o, else <run>/eval/<time> or runs/eval/<model>/<time>), checked writable."""
        if self.out_dir is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            p = self.path
            out = ((p.parent if p.is_file() else p) if self.is_ckpt else Path("runs")) / "eval"
            out = out / stamp if self.is_ckpt else out / self.spec / stamp
        else:
            out = Path(self.out_dir)
        what = f"-o {out}" if self.out_dir is not None else f"the report folder {out}"
        existing = out
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(f"{what}: {existing} is a file, not a folder; give a folder for the report (-o DIR)")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{what}: {existing} is not writable; give a folder you can write (-o DIR)")
        return out

    def save(self) -> Path:
        """results.json, report.md and the figures; the tables are echoed."""
        from panfw.evaluation.report import metric_table, rows_of, write_results

        report = write_results(self.out, self.results, self.shown)
        rows = rows_of(self.results)
        for res, head in (("rr", "reduced resolution"), ("fr", "full resolution")):
            table = metric_table(rows, res, self.results)
            if table:
                self.echo(f"\n{head}:\n{table}")
        self.echo(f"\nreport: {report}")
        return report

    def cleanup(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def score(spec: str, data: list[Any] | None = None, **kwargs: Any) -> dict:
    """``panfw eval``: see ``EvaluateProcedure``; returns results.json's content. A sweep directory
    (``sweep.toml`` inside) scores every variant's checkpoint and writes a comparison table:
    returns {variant: results}."""
    from panfw.procedures.run import SWEEP_FILE

    if (Path(spec) / SWEEP_FILE).is_file():
        return score_sweep(Path(spec), data, **kwargs)
    proc = EvaluateProcedure(spec, data, **kwargs)
    try:
        proc.setup().run()
        proc.save()
        return proc.results.to_dict()
    finally:
        proc.cleanup()


def score_sweep(sweep_dir: Path, data: list[Any] | None = None, *, out_dir: str | None = None,
                echo: Callable[[str], None] = print, **kwargs: Any) -> dict:
    """Score each variant of a sweep directory (its best.pt, else last.pt) and write comparison.md."""
    from panfw.evaluation.report import write_comparison

    variants = sorted(d for d in sweep_dir.iterdir()
                      if d.is_dir() and ((d / "best.pt").is_file() or (d / "last.pt").is_file()))
    if not variants:
        raise UserError(f"{sweep_dir}: a sweep directory without any trained variant (no <variant>/best.pt "
                        "or last.pt); train it with panfw run first")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir is not None else sweep_dir / "eval" / stamp
    results = {}
    for d in variants:
        echo(f"== sweep variant {d.name} ==")
        results[d.name] = score(str(d), data, out_dir=str(out / d.name), echo=echo, **kwargs)
    text = write_comparison(out, sweep_dir.name, results)
    echo(text)
    return results
