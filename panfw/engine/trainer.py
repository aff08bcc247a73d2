"""One training run: model, loss, data, optimiser, schedule, EMA, AMP, DDP, checkpoints, evaluation.

The loop is written for exact resumption: the sampler's order depends only on (seed, epoch), the
global random state is saved with every checkpoint, evaluation leaves it untouched, and a checkpoint
records how many batches of the current epoch were trained. A resumed run (CPU, deterministic mode,
``data.num_workers = 0``) therefore ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from panfw.config.recipe import Recipe
from panfw.engine import distributed as D
from panfw.engine.data import ResumableSampler, build_test_sets, build_train_data, collate_fn, test_specs
from panfw.engine.evaluate import evaluate, format_scores, mean_over_sets, metric_info
from panfw.engine.runlog import RunLog
from panfw.errors import DataError, UserError
from panfw.evaluation.cost import count_params
from panfw.io.checkpoint import build_model, rng_state, save_checkpoint, set_rng_state

FIGURE_SIZE = 128  # PAN size at which FLOPs are measured, as the paper's tables (128 x 128)


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept (exit code 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training: a checkpoint was saved; the CLI exits with code 130."""


# ---------------------------------------------------------------------------------------------
# building blocks


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


def build_loss(terms: list) -> nn.Module:
    """The weighted sum of the recipe's loss terms (composed by the losses plugin)."""
    try:
        from panfw_losses import build_loss as _build
    except ImportError:
        raise UserError("the losses plugin (panfw_losses) is not installed; it composes loss.terms") from None
    return _build(terms)


def model_options(recipe: Recipe, bands: int, sensor: str, ratio: int) -> dict:
    """The model's factory options: the recipe's, plus bands (and sensor/ratio for a one-sensor run)
    when the factory takes them. Stored in checkpoints so the model can be rebuilt."""
    import panfw

    entry = panfw.registry("models").get(recipe.model.name)
    opts = dict(recipe.model.options)
    return {**entry.context_options({"bands": bands, "sensor": sensor or None, "ratio": ratio}, opts), **opts}


def lr_lambda(total_steps: int, warmup_steps: int, base_lr: float, min_lr: float, kind: str):
    """Learning-rate factor per optimiser step: linear warm-up, then cosine to ``min_lr`` (or constant)."""

    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind != "cosine" or base_lr <= 0:
            return 1.0
        span = max(1, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return (min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))) / base_lr

    return f


class EMA:
    """Exponential moving average of a model's weights (``train.ema`` = decay), with the usual
    warm-up ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the init."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)


class _Signals:
    """SIGINT/SIGTERM set a flag that the loop checks between steps; a second Ctrl-C is immediate."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict = {}

    def __enter__(self) -> _Signals:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # second signal: give up at once
            raise KeyboardInterrupt
        self.received = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile and DistributedDataParallel wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def save_every_steps(recipe: Recipe, steps_per_epoch: int) -> int:
    """Mid-epoch checkpoints: ``train.save_every`` steps if the recipe has it, else the
    ``PANFW_SAVE_EVERY`` environment variable, else four times per epoch."""
    value = getattr(recipe.train, "save_every", None) or os.environ.get("PANFW_SAVE_EVERY")
    if value:
        try:
            n = int(value)
        except ValueError:
            raise UserError(f"PANFW_SAVE_EVERY={value!r}: expected a number of steps (0 = only at "
                            "epoch ends)") from None
        return n if n > 0 else 0
    return max(1, math.ceil(steps_per_epoch / 4))


# ---------------------------------------------------------------------------------------------
# the run


class Trainer:
    """Trains one resolved (non-sweep) recipe into ``run_dir``."""

    def __init__(self, recipe: Recipe, run_dir: Path, world: D.World, resume: dict | None = None) -> None:
        self.recipe, self.run_dir, self.world = recipe, run_dir, world
        self.resume_state = resume
        self.main = world.is_main
        self.device = world.device
        t = recipe.train
        set_deterministic(t.deterministic, self.device)
        seed_everything(recipe.seed)

        # data ------------------------------------------------------------------------------------
        self.train_data = build_train_data(recipe, recipe.seed)
        td = self.train_data
        self.sampler = ResumableSampler(len(td.dataset), t.batch_size, seed=recipe.seed, rank=world.rank,
                                        world_size=world.world_size)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.total_steps = t.steps if t.steps > 0 else t.epochs * self.steps_per_epoch
        self.n_epochs = math.ceil(self.total_steps / self.steps_per_epoch) if self.total_steps else 0
        self._loader_gen = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            td.dataset, batch_size=self.sampler.local_batch, sampler=self.sampler,
            num_workers=recipe.data.num_workers, collate_fn=collate_fn(),
            pin_memory=self.device.type == "cuda", generator=self._loader_gen,
            persistent_workers=False)
        self.test_sets = (build_test_sets(test_specs(recipe), recipe.data.root, max_images=recipe.eval.max_images)
                          if self.main else [])

        # model ------------------------------------------------------------------------------------
        self.model_opts = model_options(recipe, td.bands, td.sensor, td.ratio)
        model = build_model(recipe.model.name, self.model_opts)
        if not isinstance(model, nn.Module):
            raise UserError(f"model {recipe.model.name!r} is not a torch nn.Module")
        self.params = count_params(model)
        self.flops = self._measure_flops(model) if self.main else None
        self.model = model.to(self.device)
        self.loss_fn = build_loss(recipe.loss.terms).to(self.device)
        seed_everything(recipe.seed + world.rank)  # data augmentation differs per rank

        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = bool(trainable)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        if self.trainable:
            cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
            # Adam: coupled L2 weight decay, as the PanTiny solver; AdamW: decoupled
            self.optimizer = cls(trainable, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
            warm = round(t.warmup_epochs * self.steps_per_epoch)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lr_lambda(self.total_steps, warm, t.lr, t.min_lr, t.scheduler))
        self.ema = EMA(self.model, t.ema) if t.ema > 0 else None
        self.amp = bool(t.amp) and self.device.type == "cuda"
        self.amp_dtype = (torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

        self.net: nn.Module = self.model
        if world.distributed and self.trainable:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        if t.compile:
            self.net = torch.compile(self.net)

        self.rr_names = list(recipe.eval.rr_metrics)
        self.fr_names = list(recipe.eval.fr_metrics)
        self.metrics_meta = metric_info(self.rr_names + self.fr_names) if self.main else {}
        best = recipe.eval.best
        self.best_higher = self.metrics_meta.get(best, {}).get("higher_is_better", True)

        # progress state ----------------------------------------------------------------------------
        self.epoch = 0            # current epoch (0-based)
        self.batch_in_epoch = 0   # batches of the current epoch already trained
        self.step = 0             # optimiser steps done
        self.best: dict = {}      # metric, value, epoch, step
        self.last_eval: dict = {}
        self.last_eval_step = -1
        self.elapsed = 0.0        # training seconds before this process (resumed runs)
        self.finished = False
        self.acc = [0.0, 0, 0.0, 0]  # running loss sums for the log (saved, so resumed logs match)
        self.notes: list[str] = []
        if self.amp != bool(t.amp):
            self.notes.append("train.amp is ignored on CPU (mixed precision runs on CUDA only)")
        if resume is not None:
            self._load(resume)

    # -- helpers --------------------------------------------------------------------------------
    def _measure_flops(self, model: nn.Module) -> int | None:
        from panfw.evaluation.cost import model_cost

        flops = model_cost(model, bands=self.train_data.bands, ratio=self.train_data.ratio, size=FIGURE_SIZE)["flops"]
        model.train()
        return flops

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"] if self.optimizer else 0.0

    def eval_model(self) -> nn.Module:
        """The weights that are scored and deployed: the EMA when on, else the model."""
        if self.ema is None:
            return self.model
        m = copy.deepcopy(self.model)
        m.load_state_dict(self.ema.shadow)
        return m

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

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        rngs = D.gather(self.world, rng_state())
        training = {
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "steps_per_epoch": self.steps_per_epoch, "world_size": self.world.world_size,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "ema": self.ema.state_dict() if self.ema else None,
            "raw_model": ({k: v.detach().cpu() for k, v in self.model.state_dict().items()}
                          if self.ema else None),
            "rng": rngs, "best": dict(self.best), "elapsed_s": self.elapsed_total(),
            "finished": self.finished, "acc": list(self.acc), "last_eval": self.last_eval,
            "last_eval_step": self.last_eval_step,
        }
        return {"model": self.model_entry(), "recipe": self.recipe.to_dict(), "data": self.data_meta(),
                "training": training}

    def save_last(self) -> None:
        """last.pt (every rank takes part in gathering the random states; rank 0 writes)."""
        state = self.checkpoint_state()
        if self.main:
            save_checkpoint(state, self.run_dir / "last.pt")

    def save_best(self, results: dict) -> None:
        if self.main:
            save_checkpoint({"model": self.model_entry(), "recipe": self.recipe.to_dict(),
                             "data": self.data_meta(), "metrics": results, "best": dict(self.best),
                             "epoch": self.epoch, "step": self.step}, self.run_dir / "best.pt")

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
        self.epoch, self.batch_in_epoch, self.step = tr["epoch"], tr["batch_in_epoch"], tr["step"]
        self.best = dict(tr.get("best") or {})
        self.elapsed = float(tr.get("elapsed_s", 0.0))
        self.finished = bool(tr.get("finished", False))
        self.acc = list(tr.get("acc") or [0.0, 0, 0.0, 0])
        self.last_eval = tr.get("last_eval") or {}
        self.last_eval_step = int(tr.get("last_eval_step", -1))
        rngs = tr.get("rng") or []
        self._resume_rng = rngs[self.world.rank] if self.world.rank < len(rngs) else None

    def elapsed_total(self) -> float:
        return self.elapsed + (time.perf_counter() - self._t_start if hasattr(self, "_t_start") else 0.0)

    # -- evaluation -----------------------------------------------------------------------------
    def run_eval(self, log: RunLog, examples: int = 0) -> tuple[dict, dict]:
        """Score the current weights on every test set (rank 0; the others wait)."""
        results, shown = {}, {}
        if self.main:
            model = self.eval_model()
            was_training = model.training
            model.eval()
            results, shown = evaluate(lambda ts: model, self.test_sets, self.rr_names, self.fr_names,
                                      self.device, examples=examples)
            model.train(was_training)
            self.model.train()
            row = {}
            for label, r in results.items():
                for res in ("rr", "fr"):
                    for name, v in r.get(res, {}).items():
                        row[f"eval/{label}/{res}/{name}"] = v["mean"]
                    if res in r:
                        log.echo(f"  eval {label} {res.upper()}: {format_scores(r[res])}")
            log.record(self.step, self.epoch, row)
        D.barrier(self.world)
        return results, shown

    def consider_best(self, results: dict) -> None:
        metric = self.recipe.eval.best
        value = mean_over_sets(results, metric, "rr")
        if value is None or not self.main:
            return
        old = self.best.get("value")
        better = old is None or (value > old if self.best_higher else value < old)
        if better:
            self.best = {"metric": metric, "value": value, "epoch": self.epoch, "step": self.step}
            self.save_best(results)

    # -- training -------------------------------------------------------------------------------
    def train(self, log: RunLog) -> None:
        """Optimise until ``total_steps``; evaluates and checkpoints as the recipe says."""
        t = self.recipe.train
        every = self.recipe.eval.every
        save_every = save_every_steps(self.recipe, self.steps_per_epoch)
        for note in self.notes:
            log.echo(f"note: {note}")
        if getattr(self, "_resume_rng", None) is not None:
            set_rng_state(self._resume_rng)
        if not self.trainable or self.total_steps == 0:
            return
        self.model.train()
        self._t_start = time.perf_counter()
        log.start_bar(self.step)
        acc = self.acc  # [interval loss sum, interval steps, epoch loss sum, epoch steps]
        with _Signals() as sig:
            while self.step < self.total_steps:
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
                self._loader_gen.manual_seed(self.recipe.seed * 100003 + self.epoch)
                for batch in self.loader:
                    loss = self._step(batch, t)
                    acc[0], acc[1], acc[2], acc[3] = acc[0] + loss, acc[1] + 1, acc[2] + loss, acc[3] + 1
                    log.step(self.step, self.epoch, loss, self.lr())
                    if self.step % t.log_every == 0 or self.step == self.total_steps:
                        log.record(self.step, self.epoch, {"train/loss": acc[0] / acc[1],
                                                           "train/lr": self.lr()})
                        acc[0], acc[1] = 0.0, 0
                    stop = D.any_across(self.world, sig.received is not None)
                    if stop:
                        self.save_last()
                        log.close_bar()
                        log.echo(f"interrupted at epoch {self.epoch + 1}, step {self.step}: saved "
                                 f"{self.run_dir / 'last.pt'}; continue with: panfw run --resume {self.run_dir}")
                        raise Interrupted()
                    if self.step >= self.total_steps:
                        break
                    if (save_every and self.batch_in_epoch % save_every == 0
                            and self.batch_in_epoch < self.steps_per_epoch):
                        self.save_last()
                # end of an epoch (or of the step budget)
                epoch_done = self.batch_in_epoch >= self.steps_per_epoch
                log.epoch_line(self.epoch, self.n_epochs, self.step, acc[2] / max(1, acc[3]), self.lr())
                if acc[3]:
                    log.record(self.step, self.epoch, {"train/epoch_loss": acc[2] / acc[3]})
                acc[2], acc[3] = 0.0, 0
                last = self.step >= self.total_steps
                if epoch_done:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                if (every and epoch_done and self.epoch % every == 0) or last:
                    results, _ = self.run_eval(log)
                    self.last_eval, self.last_eval_step = results, self.step
                    self.consider_best(results)
                self.save_last()
        log.close_bar()

    def _step(self, batch: dict, t: Any) -> float:
        dev = self.device
        if "gt" not in batch:
            raise DataError("the training samples have no 'gt' (reference) image; train on a "
                            "reduced-resolution split")
        lms, pan, ms, gt = (batch[k].to(dev, non_blocking=True) for k in ("lms", "pan", "ms", "gt"))
        ctx = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else contextlib.nullcontext())
        with ctx:
            pred = self.net(lms, pan, ms)
            loss = self.loss_fn(pred.float(), gt)
        value = float(D.mean_across(self.world, loss.detach()).item())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the loss became {value} at epoch {self.epoch + 1}, step {self.step + 1}; training stopped. "
                f"The last good checkpoint is {self.run_dir / 'last.pt'}"
                f"{'' if (self.run_dir / 'last.pt').exists() else ' (none was saved yet)'}. "
                "Try a lower train.lr, train.grad_clip = 1.0, or check the data for NaN")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema:
            self.ema.update(self.model)
        self.step += 1
        self.batch_in_epoch += 1
        return value

    # -- whole run ------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train, evaluate the final weights and the baselines, write results and the report."""
        log = RunLog(self.run_dir if self.main else None, self.main, self.total_steps, self.step)
        try:
            return self._fit(log)
        finally:
            log.close()

    def _fit(self, log: RunLog) -> dict:
        r = self.recipe
        td = self.train_data
        if self.main and self.resume_state is None:
            log.echo(f"run {r.name}: {self.run_dir}")
        if self.main:
            flops = f"{self.flops / 1e9:.3f} GFLOPs @{FIGURE_SIZE}x{FIGURE_SIZE}" if self.flops else "FLOPs n/a"
            log.echo(f"model {r.model.name}: {self.params:,} parameters, {flops}; "
                     f"training data: {len(td.dataset)} samples ({', '.join(td.sensors)}), "
                     f"{td.bands} bands; {self.steps_per_epoch} steps/epoch, {self.total_steps} steps, "
                     f"batch {r.train.batch_size} on {self.world.world_size} x {self.device}")
        if self.finished:
            log.echo("this run had already finished; writing its report again")
        else:
            self.train(log)
        steps_this_process = self.step - (self.resume_state["training"]["step"] if self.resume_state else 0)
        train_seconds = self.elapsed_total()
        if self.last_eval_step == self.step:  # the same on every rank (only rank 0 holds results)
            final = self.last_eval
            _, shown = self._examples(log)
        else:
            final, shown = self.run_eval(log, examples=r.eval.figures)
            self.last_eval, self.last_eval_step = final, self.step
            self.consider_best(final)
        self.finished = True
        self.save_last()
        if not self.main:
            return {}
        baselines = self._baselines(log)
        results = {
            "name": r.name, "run_dir": str(self.run_dir),
            "model": {"name": r.model.name, "options": {k: v for k, v in self.model_opts.items()},
                      "params": self.params, "flops": self.flops, "flops_size": FIGURE_SIZE},
            "data": self.data_meta(),
            "train": {"steps": self.step, "epochs": self.step / max(1, self.steps_per_epoch),
                      "steps_per_epoch": self.steps_per_epoch, "batch_size": r.train.batch_size,
                      "world_size": self.world.world_size, "device": str(self.device),
                      "seconds": train_seconds,
                      "steps_per_second": (self.step / train_seconds) if train_seconds > 0 else None,
                      "steps_this_process": steps_this_process},
            "metrics": self.metrics_meta, "best_metric": r.eval.best, "best": dict(self.best),
            "final": final, "baselines": baselines,
        }
        from panfw.evaluation.report import write_results

        write_results(self.run_dir, results, shown)
        log.echo(f"done: {self.run_dir / 'report.md'}")
        return results

    def _examples(self, log: RunLog) -> tuple[dict, dict]:
        """The report's example images (the final scores are already known)."""
        if not self.main or not self.recipe.eval.figures:
            return {}, {}
        rr_only = [ts for ts in self.test_sets if ts.resolution == "rr"]
        model = self.eval_model().eval()
        out = evaluate(lambda ts: model, rr_only, self.rr_names[:1], [], self.device,
                       examples=self.recipe.eval.figures)
        self.model.train()
        return out

    def _baselines(self, log: RunLog) -> dict:
        out = {}
        for name in self.recipe.eval.baselines:
            results, _ = evaluate(lambda ts, n=name: baseline_model(n, ts).to(self.device),
                                  self.test_sets, self.rr_names, self.fr_names, self.device)
            out[name] = {"results": results, **baseline_cost(name, self.train_data.bands,
                                                              self.train_data.ratio)}
        return out


def baseline_model(name: str, ts: Any) -> nn.Module:
    """A parameter-free model for one test set (built with that set's sensor, bands and ratio)."""
    import panfw

    model = panfw.registry("models").build(name, context={"bands": ts.bands, "sensor": ts.sensor, "ratio": ts.ratio})
    return model.eval() if isinstance(model, nn.Module) else model


def baseline_cost(name: str, bands: int, ratio: int) -> dict:
    """Parameters and measured FLOPs of a parameter-free model (for the report's columns)."""
    from types import SimpleNamespace

    from panfw.evaluation.cost import model_cost

    model = baseline_model(name, SimpleNamespace(bands=bands, sensor="generic", ratio=ratio))
    return model_cost(model, bands=bands, ratio=ratio, size=FIGURE_SIZE)
