"""Shared fixtures: the toolbox test vectors, a clean plugin system, a plugin-registering helper."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parents[1]


def _testdata_candidates() -> list[Path]:
    env = os.environ.get("PANFW_TESTDATA")
    out = [Path(env)] if env else []
    return out + [REPO.parent / "shared" / "testdata", REPO / "shared" / "testdata"]


@pytest.fixture(scope="session")
def testdata_dir() -> Path:
    """The toolbox test vectors (../shared/testdata); tests using them skip where it is absent."""
    for p in _testdata_candidates():
        if (p / "toolbox_vectors.json").is_file():
            return p
    pytest.skip("toolbox test vectors (../shared/testdata) not found; set PANFW_TESTDATA")


@pytest.fixture
def plugin_registered():
    """Register plugin objects for one test and remove them afterwards: ``plugin_registered(obj, name)``."""
    from panfw.plugins import register_plugin, unregister_plugin

    names: list[str] = []

    def _register(obj, name: str) -> str:
        names.append(register_plugin(obj, name=name))
        return name

    yield _register
    for n in names:
        unregister_plugin(n)
