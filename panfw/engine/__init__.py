"""The engine: the reusable training loop and its parts, used by the procedures (``panfw.procedures``).

- ``loop``: ``Loop`` (a step function over epochs of batches, callbacks, exact resume, Ctrl-C, NaN stop)
  and ``Optimization``; ``state``: ``LoopState`` with ``state_dict``; ``callbacks``: checkpointing
  (``train.save_every``), evaluation every N epochs, best-model tracking, EMA, LR schedule;
  ``ema``, ``schedule``, ``objective`` (the composed loss and the model-objective hook).
- ``data``: the run's training and test sets and the resumable sampler; ``evaluate``: scoring
  models on test sets; ``distributed``: torchrun set-up and reductions; ``runlog``: console, logs.

``panfw run`` is ``panfw.procedures.run``.
"""

from panfw.engine.loop import Interrupted, Loop, Optimization, TrainingDiverged
from panfw.engine.state import LoopState

__all__ = ["Interrupted", "Loop", "LoopState", "Optimization", "TrainingDiverged"]
