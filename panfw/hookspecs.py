"""The panfw plugin hooks: the whole public plugin API.

Each ``register_<kind>`` hook receives ``register(name, factory, summary=None, options=None, **meta)``;
a plugin calls it once per thing it provides and returns nothing. ``summary`` is one line (default:
the first line of the factory's docstring); ``options`` a dict name -> default (default: the
factory's keyword parameters); other keywords are kept as the entry's ``meta`` (see
docs/plugins.md for the keys each kind reads). Hooks are called through pluggy, so
``@panfw.hookimpl(specname=..., tryfirst=..., trylast=...)`` work as pluggy documents them.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("panfw")
hookimpl = pluggy.HookimplMarker("panfw")


@hookspec
def register_models(register):
    """Register models: ``factory(bands=4, **options) -> nn.Module``, ``forward(lms, pan, ms) -> hrms``."""


@hookspec
def register_fusions(register):
    """Register fusion blocks: ``factory(dim, pan_channels=1, **options)``, ``forward(feat, pan)``."""


@hookspec
def register_refines(register):
    """Register refine heads: ``factory(dim, **options)``, ``forward(feat) -> feat``."""


@hookspec
def register_losses(register):
    """Register loss terms: ``factory(**options)``, ``forward(pred, target)`` (or, with meta
    ``kind="no_reference"``, ``forward(pred, ms, pan, sensor=None, ratio=None)``) ``-> scalar``."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(split, root=None, **options) -> torch Dataset`` of sample dicts."""


@hookspec
def register_metrics(register):
    """Register metrics: ``factory(**options)`` returning a ``panfw.interfaces.Metric``."""


@hookspec
def register_runtimes(register):
    """Register runtimes: ``factory(model_or_path, device=..., **options)`` -> ``runtime(lms, pan, ms) -> hrms``."""


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``panfw`` command line (``cli.add_command``)."""
