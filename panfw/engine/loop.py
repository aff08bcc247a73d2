"""The reusable training loop: epochs of batches, one step function, callbacks, exact resume.

Used by ``panfw.procedures.train`` and ``panfw.procedures.adapt``; a new procedure builds one too::

    from panfw.engine.loop import Loop, Optimization
    from panfw.engine.callbacks import Checkpoint, EvalEvery, BestModel, EMACallback, LRSchedule
    from panfw.engine.state import LoopState

    state = LoopState()                          # or state.load_state_dict(ckpt["training"])
    opt = Optimization(optimizer, params, scaler=None, grad_clip=0.0)
    loop = Loop(step=objective, batches=epoch_batches, steps_per_epoch=n, total_steps=N, world=world,
                state=state, optimization=opt, callbacks=[...], evaluate=None, log=runlog, log_every=10)
    loop.run()                                   # returns the state; raises Interrupted / TrainingDiverged

- ``step(batch) -> Tensor``: with ``optimization``, the scalar to minimise for one batch (forward
  only); the loop averages it over ranks, stops on NaN/inf *before* the update, then backpropagates,
  clips and steps the optimiser (through the gradient scaler when given). Without ``optimization``
  the step does its own update and returns its loss (tensor or float); the loop checks it after.
- ``batches(epoch, start) -> Iterable``: the epoch's batches from batch ``start`` on (a resumed run
  starts mid-epoch). Their order must depend only on (seed, epoch) for an exact resume. ``batch``
  is whatever the iterable yields (a dict for the datasets' samples); the loop never looks inside.
- ``evaluate(**kw) -> dict`` (optional): ``loop.evaluate()`` runs it, records the results in
  ``state.last_eval`` / ``state.last_eval_step`` and calls every callback's ``on_eval_end``. No test
  sets: pass ``None`` and no evaluation callback.
- callbacks (``panfw.engine.callbacks.Callback``) are called in list order at: ``on_train_start``,
  ``on_optimizer_step`` (after each update, before the counters move: EMA, LR schedule),
  ``on_step_end`` (counters moved, loss logged), ``on_epoch_end`` (``loop.epoch_done`` tells a full
  epoch from the end of the step budget, ``loop.is_last`` the end of training), ``on_eval_end``,
  ``on_interrupt`` and ``on_diverged`` (each may return a sentence for the message), ``on_train_end``.
- SIGINT/SIGTERM set a flag checked between steps (agreed by every rank): the ``on_interrupt``
  callbacks run (the checkpoint is saved) and ``Interrupted`` is raised (the CLI exits with 130).
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

import panfw.engine.distributed as D
from panfw.engine.state import LoopState
from panfw.errors import UserError

__all__ = ["Interrupted", "Loop", "Optimization", "TrainingDiverged"]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept (exit code 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training: a checkpoint was saved; the CLI exits with code 130."""


class Optimization:
    """What one update does: backward (through the AMP scaler when enabled), clip, optimiser step."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter],
                 scaler: torch.amp.GradScaler | None = None, grad_clip: float = 0.0) -> None:
        self.optimizer = optimizer
        self.params = list(params)
        self.scaler = scaler if scaler is not None and scaler.is_enabled() else None
        self.grad_clip = float(grad_clip)

    def update(self, loss: torch.Tensor) -> None:
        """One optimiser step from ``loss``."""
        opt = self.optimizer
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if self.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            opt.step()
            return
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(opt)
        self.scaler.update()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


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


class _NoLog:
    """Stands in for a RunLog when the caller gives none."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


class Loop:
    """Runs ``step`` over ``batches`` until ``total_steps``; see the module docstring."""

    def __init__(self, *, step: Callable[[Any], Any], batches: Callable[[int, int], Iterable[Any]],
                 steps_per_epoch: int, total_steps: int, world: D.World | None = None,
                 state: LoopState | None = None, optimization: Optimization | None = None,
                 callbacks: Sequence[Any] = (), evaluate: Callable[..., dict] | None = None,
                 log: Any = None, log_every: int = 10) -> None:
        if steps_per_epoch < 1:
            raise UserError(f"a training epoch needs at least one batch (got {steps_per_epoch})")
        self.step_fn, self.batches = step, batches
        self.steps_per_epoch, self.total_steps = int(steps_per_epoch), int(total_steps)
        self.world = world or D.World()
        self.state = state if state is not None else LoopState()
        self.optimization = optimization
        self.callbacks = list(callbacks)
        self.evaluate_fn = evaluate
        self.log = log if log is not None else _NoLog()
        self.log_every = max(1, int(log_every))
        self.epoch_done = False
        self.is_last = False

    @property
    def n_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch) if self.total_steps else 0

    @property
    def lr(self) -> float:
        return self.optimization.lr if self.optimization else 0.0

    def _call(self, hook: str, *args: Any) -> list[Any]:
        return [getattr(cb, hook)(self, *args) for cb in self.callbacks if hasattr(cb, hook)]

    def evaluate(self, **kwargs: Any) -> dict:
        """Score the current weights (``evaluate``), record the results, tell the callbacks."""
        if self.evaluate_fn is None:
            return {}
        results = self.evaluate_fn(**kwargs)
        self.state.last_eval, self.state.last_eval_step = results, self.state.step
        self._call("on_eval_end", results)
        return results

    def _one_step(self, batch: Any) -> float:
        s = self.state
        if self.optimization is None:
            loss = self.step_fn(batch)
            value = self._agreed(loss)
            self._check(value)
        else:
            loss = self.step_fn(batch)
            value = self._agreed(loss)
            self._check(value)  # before the update: the weights stay those of the last good step
            self.optimization.update(loss)
        self._call("on_optimizer_step")
        s.step += 1
        s.batch_in_epoch += 1
        return value

    def _agreed(self, loss: Any) -> float:
        if torch.is_tensor(loss):
            return float(D.mean_across(self.world, loss.detach()).item())
        return float(D.mean_across(self.world, torch.tensor(float(loss), device=self.world.device)).item()
                     if self.world.distributed else float(loss))

    def _check(self, value: float) -> None:
        if math.isfinite(value):
            return
        s = self.state
        notes = [n for n in self._call("on_diverged") if n]
        raise TrainingDiverged(
            f"the loss became {value} at epoch {s.epoch + 1}, step {s.step + 1}; training stopped. "
            + "".join(f"{n}. " for n in notes)
            + "Try a lower train.lr, train.grad_clip = 1.0, or check the data for NaN")

    def run(self) -> LoopState:
        """Train until ``total_steps`` (nothing to do when already there)."""
        s, log = self.state, self.log
        self._call("on_train_start")
        if s.step >= self.total_steps:
            return s
        s.start_clock()
        log.start_bar(s.step)
        acc = s.acc
        try:
            with _Signals() as sig:
                while s.step < self.total_steps:
                    before = s.step
                    for batch in self.batches(s.epoch, s.batch_in_epoch):
                        loss = self._one_step(batch)
                        acc[0], acc[1], acc[2], acc[3] = acc[0] + loss, acc[1] + 1, acc[2] + loss, acc[3] + 1
                        log.step(s.step, s.epoch, loss, self.lr)
                        if s.step % self.log_every == 0 or s.step == self.total_steps:
                            log.record(s.step, s.epoch, {"train/loss": acc[0] / acc[1], "train/lr": self.lr})
                            acc[0], acc[1] = 0.0, 0
                        if D.any_across(self.world, sig.received is not None):
                            notes = [n for n in self._call("on_interrupt") if n]
                            log.close_bar()
                            log.echo(f"interrupted at epoch {s.epoch + 1}, step {s.step}"
                                     + "".join(f": {n}" for n in notes))
                            raise Interrupted()
                        if s.step >= self.total_steps:
                            break
                        self._call("on_step_end")
                    if s.step == before:  # would loop for ever
                        raise UserError(f"epoch {s.epoch + 1} gave no batch from batch {s.batch_in_epoch} on "
                                        f"(an epoch should have {self.steps_per_epoch})")
                    self._end_epoch()
        finally:
            s.stop_clock()
        log.close_bar()
        self._call("on_train_end")
        return s

    def _end_epoch(self) -> None:
        s, acc = self.state, self.state.acc
        self.epoch_done = s.batch_in_epoch >= self.steps_per_epoch
        self.log.epoch_line(s.epoch, self.n_epochs, s.step, acc[2] / max(1, acc[3]), self.lr)
        if acc[3]:
            self.log.record(s.step, s.epoch, {"train/epoch_loss": acc[2] / acc[3]})
        acc[2], acc[3] = 0.0, 0
        self.is_last = s.step >= self.total_steps
        if self.epoch_done:
            s.epoch += 1
            s.batch_in_epoch = 0
        self._call("on_epoch_end")
