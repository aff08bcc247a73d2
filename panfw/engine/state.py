"""Loop state: the counters a run resumes from, as data with ``state_dict`` / ``load_state_dict``
(Lightning's ``loops/progress.py`` is the model)."""

from __future__ import annotations

import time
from typing import Any

import attrs


@attrs.define
class LoopState:
    """Where a loop stands; everything here is saved in ``last.pt`` and restored on resume."""

    epoch: int = 0              # current epoch (0-based)
    batch_in_epoch: int = 0     # batches of the current epoch already trained
    step: int = 0               # optimiser steps done
    elapsed: float = 0.0        # training seconds of earlier processes (resumed runs)
    finished: bool = False
    best: dict = attrs.field(factory=dict)        # metric, value, epoch, step
    last_eval: dict = attrs.field(factory=dict)   # the latest evaluation's results
    last_eval_step: int = -1
    # running loss sums for the log: [interval sum, interval steps, epoch sum, epoch steps] (saved, so
    # a resumed run logs the same means)
    acc: list = attrs.field(factory=lambda: [0.0, 0, 0.0, 0])
    _since: float | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def start_clock(self) -> None:
        """Count this process's training time from now."""
        self._since = time.perf_counter()

    def stop_clock(self) -> None:
        """Fold the running time into ``elapsed``."""
        self.elapsed = self.seconds
        self._since = None

    @property
    def seconds(self) -> float:
        """Training seconds so far, this process included."""
        return self.elapsed + (time.perf_counter() - self._since if self._since is not None else 0.0)

    def state_dict(self) -> dict[str, Any]:
        """Builtins only (loads with ``weights_only=True``); the key names of the checkpoint layout."""
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                "elapsed_s": self.seconds, "finished": self.finished, "best": dict(self.best),
                "last_eval": self.last_eval, "last_eval_step": self.last_eval_step, "acc": list(self.acc)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict`` output (older checkpoints lacking a key get its default)."""
        self.epoch, self.batch_in_epoch, self.step = (int(state["epoch"]), int(state["batch_in_epoch"]),
                                                      int(state["step"]))
        self.elapsed = float(state.get("elapsed_s", 0.0))
        self._since = None
        self.finished = bool(state.get("finished", False))
        self.best = dict(state.get("best") or {})
        self.last_eval = state.get("last_eval") or {}
        self.last_eval_step = int(state.get("last_eval_step", -1))
        self.acc = list(state.get("acc") or [0.0, 0, 0.0, 0])
