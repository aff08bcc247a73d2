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
        raise UserError(f"{path}: not a readable panfw checkpoint ({_load_failure(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a panfw checkpoint (no 'format': {FORMAT!r} entry)")
    return state


def _load_failure(exc: Exception) -> str:
    """Why torch.load failed, without PyTorch's advice to retry with ``weights_only=False``: panfw
    never loads a pickle unsafely, whatever the file."""
    text = str(exc)
    if "weights_only" in text or "Weights only" in text:
        detail = next((ln.split("WeightsUnpickler error:", 1)[1].strip() for ln in text.splitlines()
                       if "WeightsUnpickler error:" in ln), "")
        detail = detail.split(". Please use")[0].strip() or next(
            (ln.strip() for ln in text.splitlines()[1:] if ln.strip() and "weights_only" not in ln
             and "Please file" not in ln and "documentation" not in ln), "")
        return (f"it is not a weights-only file{': ' + detail if detail else ''}; panfw loads checkpoints "
                "with weights_only=True only and never unpickles arbitrary objects, so a corrupt or "
                "foreign file is refused: re-create it with panfw")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first}"


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
