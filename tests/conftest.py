"""Shared fixtures: the toolbox test vectors, a clean plugin system, a plugin-registering helper."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="module")
def one_thread():
    """Small images: one thread avoids thread start-up and contention costs on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CLASSICAL_CASES = {"fr4": ("scene4_wv3.npz", "fr_lms", "pan", "wald_ms_lr", slice(80, 176)),
                   "fr8": ("scene8_wv3.npz", "fr_lms", "fr_pan", "fr_ms", slice(16, 48))}


@pytest.fixture(scope="module")
def classical_vectors(testdata_dir) -> dict:
    """Inputs, outputs and metadata of the toolbox's classical methods (one fresh cache per module)."""
    cl = np.load(testdata_dir / "classical.npz")
    meta = json.loads((testdata_dir / "toolbox_vectors.json").read_text())["classical"]
    inputs = {}
    for case, (fname, k_lms, k_pan, k_ms, crop) in CLASSICAL_CASES.items():
        s = np.load(testdata_dir / fname)
        inputs[case] = {"lms": torch.from_numpy(s[k_lms])[None], "pan": torch.from_numpy(s[k_pan])[None],
                        "ms": torch.from_numpy(s[k_ms])[None], "crop": crop,
                        "labels": torch.from_numpy(cl[f"kmeans_labels_{case}"])}
    gt = torch.from_numpy(np.load(testdata_dir / "scene4_wv3.npz")["ms_hr"])[None]
    return {"npz": cl, "meta": meta, "inputs": inputs, "gt4": gt, "cache": {}}
