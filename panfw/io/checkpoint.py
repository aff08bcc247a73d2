"""Checkpoints: written atomically, loaded with ``weights_only=True``.

Layout (a plain dict of tensors and builtins so ``weights_only`` loading works)::

    {"format": "panfw-checkpoint", "version": 1,
     "model": {"name": str, "options": dict, "state_dict": dict},
     "recipe": dict,            # the resolved recipe (Recipe.to_dict())
     "data": {"sensor": str, "bands": int, "ratio": int, "bit_depth": int},
     ...}                       # the engine adds optimizer, scheduler, ema, step, rng, sampler state
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from panfw.errors import UserError

FORMAT = "panfw-checkpoint"


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": 1, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a panfw checkpoint safely (``weights_only=True``); a wrong file is a UserError."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found (give a .pt file or a run directory)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path}: not a readable panfw checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a panfw checkpoint (no 'format': {FORMAT!r} entry)")
    return state


def build_model(name: str, options: dict | None = None, bands: int | None = None) -> Any:
    """Build a registered model with its options (adding ``bands`` when the factory takes it)."""
    import panfw

    entry = panfw.registry("models").get(name)
    options = dict(options or {})
    if bands is not None and ("bands" in entry.options or entry.accepts_any_option):
        options.setdefault("bands", bands)
    return panfw.registry("models").build(name, **options)


def model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Any, dict]:
    """The model stored in a checkpoint, weights loaded, in eval mode; and the checkpoint dict."""
    state = load_checkpoint(path, map_location)
    spec = state["model"]
    model = build_model(spec["name"], spec.get("options", {}))
    missing, unexpected = model.load_state_dict(spec["state_dict"], strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: the weights do not fit model {spec['name']!r} "
                        f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})")
    return model.eval(), state


def load_model(spec: str | Path, map_location: str | torch.device = "cpu", **options: Any) -> tuple[Any, dict]:
    """A model from a checkpoint path or a run directory, or a registered model name (untrained or
    parameter-free); returns (model, checkpoint dict or {})."""
    p = Path(spec)
    if p.suffix in (".pt", ".pth") or p.is_dir() or p.is_file():
        return model_from_checkpoint(p, map_location)
    import panfw

    try:
        panfw.registry("models").get(str(spec))
    except UserError as exc:
        raise UserError(f"{spec!r} is neither a checkpoint file, a run directory nor a registered "
                        f"model: {exc}") from None
    return build_model(str(spec), options).eval(), {}


def rng_state() -> dict:
    """This process's random-number states (torch, CUDA, numpy, python) as tensors and builtins, so a
    checkpoint holding them still loads with ``weights_only=True``."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype("int64")), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64),
                        "gauss_next": py_gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured."""
    import random

    import numpy as np

    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype("uint32"), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)
