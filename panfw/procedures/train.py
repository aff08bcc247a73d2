"""The training procedure: one (non-sweep) recipe trained, evaluated and reported in a run directory.

It owns the recipe's ``[model]``, ``[loss]``, ``[data]``, ``[train]`` and ``[eval]`` sections, and
builds the engine's loop (``panfw.engine.loop``) with its callbacks. The step minimises the model's
own ``objective(batch, loss)`` when it defines one, else ``loss(model(lms, pan, ms), batch)`` (the
composed loss of ``panfw.engine.objective``); under DDP both sit in one module so gradients sync.

The loop is written for exact resumption: the sampler's order depends only on (seed, epoch), the
global random state is saved with every checkpoint, evaluation leaves it untouched, and a checkpoint
records how many batches of the current epoch were trained. A resumed run (CPU, deterministic mode,
``data.num_workers = 0``) therefore ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

import panfw.engine.distributed as D
from panfw.config.recipe import Recipe
from panfw.engine.callbacks import BestModel, Checkpoint, EMACallback, EvalEvery, LRSchedule, save_every_steps
from panfw.engine.data import ResumableSampler, build_test_sets, build_train_data, collate_fn
from panfw.engine.ema import EMA
from panfw.engine.evaluate import baseline_cost, baseline_model, evaluate, format_scores, mean_over_sets
from panfw.engine.loop import Loop, Optimization
from panfw.engine.objective import ModelObjective, build_loss
from panfw.engine.runlog import RunLog
from panfw.engine.schedule import build_scheduler
from panfw.engine.state import LoopState
from panfw.errors import DataError, UserError
from panfw.evaluation.cost import FIGURE_SIZE, count_params, model_cost
from panfw.evaluation.results import Baseline, ModelInfo, Results, TrainInfo, metric_meta
from panfw.io.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state

__all__ = ["TrainProcedure", "seed_everything", "set_deterministic", "train"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool, device: torch.device) -> None:
    """``train.deterministic``: deterministic kernels (and no cuDNN autotuning) when on."""
    if device.type == "cuda":
        if on:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = not on
        torch.backends.cudnn.deterministic = on
    torch.use_deterministic_algorithms(on, warn_only=True)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


class TrainProcedure:
    """Trains one resolved (non-sweep) recipe into ``run_dir``: ``setup()``, ``run()``, ``cleanup()``."""

    def __init__(self, recipe: Recipe, run_dir: Path, world: D.World, resume: dict | None = None) -> None:
        self.recipe, self.run_dir, self.world = recipe, Path(run_dir), world
        self.resume_state = resume
        self.main = world.is_main
        self.device = world.device
        self.state = LoopState()
        self.notes: list[str] = []
        if not recipe.data.test:
            self.notes.append("the recipe has no [[data.test]]: the run is not evaluated (no scores, no best.pt by "
                              "eval.best, a report without tables); add test sets to score it, or score a "
                              "checkpoint later with panfw eval CHECKPOINT --data NAME")
        self.shown: dict = {}
        self.log: RunLog | None = None

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> TrainProcedure:
        """Data, model, objective, optimiser, schedule, EMA, AMP, DDP, the loop and its callbacks."""
        r, t, world = self.recipe, self.recipe.train, self.world
        set_deterministic(t.deterministic, self.device)
        seed_everything(r.seed)

        self.train_data = td = build_train_data(r, r.seed)
        self.sampler = ResumableSampler(len(td.dataset), t.batch_size, seed=r.seed, rank=world.rank,
                                        world_size=world.world_size)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.total_steps = t.steps if t.steps > 0 else t.epochs * self.steps_per_epoch
        self._loader_gen = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            td.dataset, batch_size=self.sampler.local_batch, sampler=self.sampler,
            num_workers=r.data.num_workers, collate_fn=collate_fn(),
            pin_memory=self.device.type == "cuda", generator=self._loader_gen, persistent_workers=False)
        # no [[data.test]]: nothing is evaluated (training patches are too small to score, e.g. for the
        # toolbox's 21-pixel border cut); the run says so and still saves its checkpoints
        self.test_sets = (build_test_sets(r.data.test, r.data.root, max_images=r.eval.max_images)
                          if self.main and r.data.test else [])

        import panfw

        context = {"bands": td.bands, "sensor": td.sensor or None, "ratio": td.ratio}
        entry = panfw.registry("models").get(r.model.name)
        # the options stored in checkpoints: the recipe's plus the context the factory declares
        self.model_opts = {**r.model.options, **entry.context_options(context, r.model.options)}
        model = panfw.registry("models").build(r.model.name, **self.model_opts)
        if not isinstance(model, nn.Module):
            raise UserError(f"model {r.model.name!r} is not a torch nn.Module")
        self.params = count_params(model)
        self.flops = (model_cost(model, bands=td.bands, ratio=td.ratio)["flops"] if self.main else None)
        model.train()
        self.model = model.to(self.device)
        self.loss_fn = (build_loss(r.loss.terms).to(self.device)
                        if r.loss.terms or not hasattr(model, "objective") else None)
        seed_everything(r.seed + world.rank)  # data augmentation differs per rank

        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = bool(trainable)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        if self.trainable:
            cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
            # Adam: coupled L2 weight decay, as the PanTiny solver; AdamW: decoupled
            self.optimizer = cls(trainable, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
            warm = round(t.warmup_epochs * self.steps_per_epoch)
            self.scheduler = build_scheduler(self.optimizer, self.total_steps, warm, t.min_lr, t.scheduler)
        self.ema = EMA(self.model, t.ema) if t.ema > 0 else None
        self.amp = bool(t.amp) and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        if self.amp != bool(t.amp):
            self.notes.append("train.amp is ignored on CPU (mixed precision runs on CUDA only)")

        forward = torch.compile(self.model) if t.compile else None
        self.objective = ModelObjective(self.model, self.loss_fn, forward)
        self.net: nn.Module = self.objective
        if world.distributed and self.trainable:
            self.net = nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device] if self.device.type == "cuda" else None)

        self.rr_names, self.fr_names = list(r.eval.rr_metrics), list(r.eval.fr_metrics)
        self.metrics_meta = metric_meta(self.rr_names + self.fr_names) if self.main else {}
        best = self.metrics_meta.get(r.eval.best)
        self.best_higher = best.higher_is_better if best is not None else True
        if self.resume_state is not None:
            self._load(self.resume_state)
        self.loop = self._build_loop()
        return self

    def _build_loop(self) -> Loop:
        r, t = self.recipe, self.recipe.train
        callbacks: list[Any] = []
        if self.scheduler is not None:
            callbacks.append(LRSchedule(self.scheduler))
        if self.ema is not None:
            callbacks.append(EMACallback(self.ema, self.model))
        callbacks.append(EvalEvery(r.eval.every))
        callbacks.append(BestModel(r.eval.best, lambda res: mean_over_sets(res, r.eval.best, "rr"),
                                   self.best_higher, self.save_best))
        callbacks.append(Checkpoint(self.save_last, self.run_dir / "last.pt",
                                    save_every_steps(t.save_every, self.steps_per_epoch),
                                    resume_hint=f"panfw run --resume {self.run_dir}"))
        opt = (Optimization(self.optimizer, self.model.parameters(), self.scaler, t.grad_clip)
               if self.optimizer is not None else None)
        return Loop(step=self.step, batches=self.batches, steps_per_epoch=self.steps_per_epoch,
                    total_steps=self.total_steps, world=self.world, state=self.state, optimization=opt,
                    callbacks=callbacks, evaluate=self.run_eval, log_every=t.log_every)

    # -- the step -------------------------------------------------------------------------------
    def batches(self, epoch: int, start: int) -> Any:
        """The epoch's batches from batch ``start`` on (the order depends only on seed and epoch)."""
        self.sampler.set_epoch(epoch, start)
        self._loader_gen.manual_seed(self.recipe.seed * 100003 + epoch)
        return self.loader

    def step(self, batch: dict) -> torch.Tensor:
        """The scalar to minimise for one batch."""
        if "gt" not in batch and self.objective.needs_reference:
            raise DataError("the training samples have no 'gt' (reference) image and the loss compares "
                            "against one; train on a reduced-resolution split or use no-reference loss terms")
        b = _to(batch, self.device)
        ctx = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else contextlib.nullcontext()
        with ctx:
            return self.net(b)

    # -- state ----------------------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        """The weights that are scored and deployed: the EMA when on, else the model."""
        return self.model if self.ema is None else self.ema.copy_of(self.model)

    def data_meta(self) -> dict:
        """The checkpoint's "data": sensor ("" for a mixed run), sensors, bands, ratio, bit depth
        (absent when the mixed sensors differ)."""
        from panfw.sensors import get_sensor

        td = self.train_data
        meta = {"sensor": td.sensor, "sensors": list(td.sensors), "bands": td.bands, "ratio": td.ratio}
        depths = set()
        for s in td.sensors:
            try:
                depths.add(get_sensor(s).bit_depth)
            except UserError:
                pass
        if len(depths) == 1:
            meta["bit_depth"] = depths.pop()
        return meta

    def model_entry(self) -> dict:
        return {"name": self.recipe.model.name, "options": dict(self.model_opts),
                "state_dict": {k: v.detach().cpu() for k, v in self.eval_model().state_dict().items()}}

    def checkpoint_state(self) -> dict:
        """last.pt's content: the loop state's keys and everything else needed to resume."""
        rngs = D.gather(self.world, rng_state())
        training = {
            **self.state.state_dict(),
            "steps_per_epoch": self.steps_per_epoch, "world_size": self.world.world_size,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "ema": self.ema.state_dict() if self.ema else None,
            "raw_model": ({k: v.detach().cpu() for k, v in self.model.state_dict().items()}
                          if self.ema else None),
            "rng": rngs,
        }
        return {"model": self.model_entry(), "recipe": self.recipe.to_dict(), "data": self.data_meta(),
                "training": training}

    def save_last(self) -> None:
        """last.pt (every rank takes part in gathering the random states; rank 0 writes)."""
        state = self.checkpoint_state()
        if self.main:
            save_checkpoint(state, self.run_dir / "last.pt")

    save = save_last

    def save_best(self, results: dict) -> None:
        if self.main:
            s = self.state
            save_checkpoint({"model": self.model_entry(), "recipe": self.recipe.to_dict(),
                             "data": self.data_meta(), "metrics": results, "best": dict(s.best),
                             "epoch": s.epoch, "step": s.step}, self.run_dir / "best.pt")

    def _load(self, state: dict) -> None:
        tr = state["training"]
        if tr.get("steps_per_epoch") != self.steps_per_epoch:
            raise UserError(f"{self.run_dir}: cannot resume: an epoch had {tr.get('steps_per_epoch')} steps "
                            f"and now has {self.steps_per_epoch} (the data, the batch size or the process "
                            "count changed)")
        weights = tr["raw_model"] if tr.get("raw_model") is not None else state["model"]["state_dict"]
        self.model.load_state_dict(weights)
        if self.optimizer and tr.get("optimizer"):
            self.optimizer.load_state_dict(tr["optimizer"])
        if self.scheduler and tr.get("scheduler"):
            self.scheduler.load_state_dict(tr["scheduler"])
        if self.scaler.is_enabled() and tr.get("scaler"):
            self.scaler.load_state_dict(tr["scaler"])
        if self.ema and tr.get("ema"):
            self.ema.load_state_dict(tr["ema"])
        self.state.load_state_dict(tr)
        rngs = tr.get("rng") or []
        self._resume_rng = rngs[self.world.rank] if self.world.rank < len(rngs) else None

    # -- evaluation -----------------------------------------------------------------------------
    def run_eval(self, examples: int = 0) -> dict:
        """Score the current weights on every test set (rank 0; the others wait)."""
        results: dict = {}
        if self.main:
            model = self.eval_model()
            was_training = model.training
            model.eval()
            results, self.shown = evaluate(lambda ts: model, self.test_sets, self.rr_names, self.fr_names,
                                           self.device, examples=examples)
            model.train(was_training)
            self.model.train()
            row = {}
            for label, res in results.items():
                for kind in ("rr", "fr"):
                    for name, v in res.get(kind, {}).items():
                        row[f"eval/{label}/{kind}/{name}"] = v["mean"]
                    if kind in res:
                        self.log.echo(f"  eval {label} {kind.upper()}: {format_scores(res[kind])}")
            self.log.record(self.state.step, self.state.epoch, row)
        D.barrier(self.world)
        return results

    def _examples(self) -> dict:
        """The report's example images (the final scores are already known)."""
        if not self.main or not self.recipe.eval.figures:
            return {}
        rr_only = [ts for ts in self.test_sets if ts.resolution == "rr"]
        model = self.eval_model().eval()
        _, shown = evaluate(lambda ts: model, rr_only, self.rr_names[:1], [], self.device,
                            examples=self.recipe.eval.figures)
        self.model.train()
        return shown

    def _baselines(self) -> dict[str, Baseline]:
        out = {}
        for name in self.recipe.eval.baselines:
            results, _ = evaluate(lambda ts, n=name: baseline_model(n, ts).to(self.device),
                                  self.test_sets, self.rr_names, self.fr_names, self.device)
            out[name] = Baseline(results=results, **baseline_cost(name, self.train_data.bands,
                                                                  self.train_data.ratio))
        return out

    # -- the whole run --------------------------------------------------------------------------
    def run(self) -> dict:
        """Train, evaluate the final weights and the baselines, write results and the report;
        returns results.json's content on rank 0 ({} elsewhere)."""
        self.log = RunLog(self.run_dir if self.main else None, self.main, self.total_steps, self.state.step)
        self.loop.log = self.log
        r, td, s, log = self.recipe, self.train_data, self.state, self.log
        if self.main and self.resume_state is None:
            log.echo(f"run {r.name}: {self.run_dir}")
        if self.main:
            flops = f"{self.flops / 1e9:.3f} GFLOPs @{FIGURE_SIZE}x{FIGURE_SIZE}" if self.flops else "FLOPs n/a"
            log.echo(f"model {r.model.name}: {self.params:,} parameters, {flops}; "
                     f"training data: {len(td.dataset)} samples ({', '.join(td.sensors)}), "
                     f"{td.bands} bands; {self.steps_per_epoch} steps/epoch, {self.total_steps} steps, "
                     f"batch {r.train.batch_size} on {self.world.world_size} x {self.device}")
        start_step = s.step
        if s.finished:
            log.echo("this run had already finished; writing its report again")
        else:
            for note in self.notes:
                log.echo(f"note: {note}")
            if getattr(self, "_resume_rng", None) is not None:
                set_rng_state(self._resume_rng)
            if self.trainable and self.total_steps > 0:
                self.model.train()
                self.loop.run()
        if s.last_eval_step == s.step:  # the same on every rank (only rank 0 holds results)
            final = s.last_eval
            shown = self._examples()
        else:
            final = self.loop.evaluate(examples=r.eval.figures)
            shown = self.shown
        s.finished = True
        self.save_last()
        if not self.main:
            return {}
        seconds = s.seconds
        results = Results(
            name=r.name, run_dir=str(self.run_dir),
            model=ModelInfo(name=r.model.name, options=dict(self.model_opts), params=self.params,
                            flops=self.flops, flops_size=FIGURE_SIZE),
            data=self.data_meta(),
            train=TrainInfo(steps=s.step, epochs=s.step / max(1, self.steps_per_epoch),
                            steps_per_epoch=self.steps_per_epoch, batch_size=r.train.batch_size,
                            world_size=self.world.world_size, device=str(self.device), seconds=seconds,
                            steps_per_second=(s.step / seconds) if seconds > 0 else None,
                            steps_this_process=s.step - start_step),
            metrics=self.metrics_meta, best_metric=r.eval.best, best=dict(s.best), final=final,
            baselines=self._baselines())
        from panfw.evaluation.report import write_results

        write_results(self.run_dir, results, shown)
        log.echo(f"done: {self.run_dir / 'report.md'}")
        return results.to_dict()

    def cleanup(self) -> None:
        """Close the run log (files and TensorBoard)."""
        if self.log is not None:
            self.log.close()


def train(recipe: Recipe, run_dir: Path, world: D.World, resume: bool = False) -> dict:
    """Train one (non-sweep) recipe into ``run_dir``; with ``resume``, continue from its last.pt."""
    state = None
    if resume and (run_dir / "last.pt").is_file():
        state = load_checkpoint(run_dir / "last.pt")
    if world.is_main:
        (run_dir / "recipe.toml").write_text(recipe.to_toml(), encoding="utf-8")
    proc = TrainProcedure(recipe, run_dir, world, resume=state)
    try:
        return proc.setup().run()
    finally:
        proc.cleanup()
