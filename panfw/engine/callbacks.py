"""Loop callbacks: checkpointing (``train.save_every``), evaluation every N epochs, best-model
tracking, EMA of the weights and the per-step learning-rate schedule. See ``panfw.engine.loop``
for when each hook is called; a callback defines only the hooks it needs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panfw.engine.ema import EMA


class Callback:
    """Base class (optional: the loop calls whichever hooks an object has)."""

    def on_train_start(self, loop: Any) -> None: ...
    def on_optimizer_step(self, loop: Any) -> None: ...
    def on_step_end(self, loop: Any) -> None: ...
    def on_epoch_end(self, loop: Any) -> None: ...
    def on_eval_end(self, loop: Any, results: dict) -> None: ...
    def on_interrupt(self, loop: Any) -> str | None: ...
    def on_diverged(self, loop: Any) -> str | None: ...
    def on_train_end(self, loop: Any) -> None: ...


def save_every_steps(save_every: int, steps_per_epoch: int) -> int:
    """``train.save_every``: N steps between mid-epoch checkpoints; -1 (default) four times per
    epoch; 0 only at epoch ends."""
    if save_every < 0:
        return max(1, math.ceil(steps_per_epoch / 4))
    return int(save_every)


class Checkpoint(Callback):
    """Calls ``save()`` (which writes ``path``) at every epoch end, every ``every`` steps within an
    epoch, and on Ctrl-C; on NaN it names the last good checkpoint."""

    def __init__(self, save: Callable[[], None], path: Path, every: int, resume_hint: str = "") -> None:
        self.save, self.path, self.every, self.resume_hint = save, Path(path), int(every), resume_hint

    def on_step_end(self, loop: Any) -> None:
        b = loop.state.batch_in_epoch
        if self.every and b % self.every == 0 and b < loop.steps_per_epoch:
            self.save()

    def on_epoch_end(self, loop: Any) -> None:
        self.save()

    def on_interrupt(self, loop: Any) -> str:
        self.save()
        return f"saved {self.path}" + (f"; continue with: {self.resume_hint}" if self.resume_hint else "")

    def on_diverged(self, loop: Any) -> str:
        return (f"The last good checkpoint is {self.path}"
                + ("" if self.path.exists() else " (none was saved yet)"))


class EvalEvery(Callback):
    """Evaluates every ``every`` epochs (0: never mid-run) and always at the end of training."""

    def __init__(self, every: int) -> None:
        self.every = int(every)

    def on_epoch_end(self, loop: Any) -> None:
        epoch = loop.state.epoch
        if (self.every and loop.epoch_done and epoch % self.every == 0) or loop.is_last:
            loop.evaluate()


class BestModel(Callback):
    """Keeps the best score of ``score(results)`` in ``state.best`` and calls ``save(results)`` on
    every improvement (``higher``: larger is better)."""

    def __init__(self, metric: str, score: Callable[[dict], float | None], higher: bool,
                 save: Callable[[dict], None]) -> None:
        self.metric, self.score, self.higher, self.save = metric, score, bool(higher), save

    def on_eval_end(self, loop: Any, results: dict) -> None:
        value = self.score(results)
        if value is None:
            return
        old = loop.state.best.get("value")
        if old is None or (value > old if self.higher else value < old):
            loop.state.best = {"metric": self.metric, "value": value, "epoch": loop.state.epoch,
                               "step": loop.state.step}
            self.save(results)


class EMACallback(Callback):
    """Updates an ``EMA`` of ``model`` after every optimiser step."""

    def __init__(self, ema: EMA, model: Any) -> None:
        self.ema, self.model = ema, model

    def on_optimizer_step(self, loop: Any) -> None:
        self.ema.update(self.model)


class LRSchedule(Callback):
    """Steps a learning-rate scheduler after every optimiser step (schedules are per step)."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def on_optimizer_step(self, loop: Any) -> None:
        self.scheduler.step()
