"""The built-in plugin that registers the core's runtimes through the ``register_runtimes`` hook.

Kept apart from ``panfw.inference.runtimes`` so that loading plugins (``panfw --help``) imports no torch:
the runtimes module is imported when the registry is first filled.
"""

from __future__ import annotations

from collections.abc import Callable

from panfw.hookspecs import hookimpl


@hookimpl
def register_runtimes(register: Callable[..., None]) -> None:
    """The core's runtimes: torch (eager and variants), onnxruntime, TensorRT."""
    from panfw.inference.runtimes import register_all

    register_all(register)
