"""Procedures: one file per job, each owning its recipe sections (torchtune's recipes are the model).

- ``train``: ``[model]``, ``[loss]``, ``[data]``, ``[train]`` and ``[eval]``; ``TrainProcedure``.
- ``evaluate``: ``panfw eval`` over test sets, and a sweep's runs with their comparison.
- ``adapt``: per-scene adaptation on the same loop (``panfw.engine.loop``).

Each is a class with ``setup``, ``run``, ``save`` and ``cleanup`` (or functions around one).
"""

from panfw.procedures.run import run
from panfw.procedures.train import TrainProcedure, train

__all__ = ["TrainProcedure", "run", "train"]
