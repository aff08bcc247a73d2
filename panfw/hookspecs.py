"""The panfw plugin hooks: the whole public plugin API.

Each ``register_*`` hook receives ``register(name, factory, **meta)``; a plugin calls it once per
thing it provides and returns nothing. ``meta`` may carry ``summary`` (one line; defaults to the
first line of the factory's docstring) and ``options`` (a dict name -> default; defaults to the
factory's keyword parameters).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("panfw")
hookimpl = pluggy.HookimplMarker("panfw")


@hookspec
def register_models(register):
    """Register models: ``factory(bands=4, **options) -> nn.Module`` with ``forward(lms, pan, ms)``."""


@hookspec
def register_fusions(register):
    """Register fusion blocks: ``factory(dim, pan_channels=1, **options)``, ``forward(feat, pan)``."""


@hookspec
def register_refines(register):
    """Register refine heads: ``factory(dim, **options)``, ``forward(feat) -> feat``."""


@hookspec
def register_losses(register):
    """Register losses: ``factory(**options)``, ``forward(pred, target) -> scalar``."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(split, root=None, **options) -> torch Dataset`` of sample dicts."""


@hookspec
def register_metrics(register):
    """Register metrics: ``factory(**options)`` returning a ``panfw.interfaces.Metric``."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``panfw`` command line (``cli.add_command``)."""
