"""Where data lives: an explicit folder, else the PANFW_DATA environment variable (read only here)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PANFW_DATA"


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data folder: ``explicit`` if given (non-empty), else $PANFW_DATA, else None."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else None
