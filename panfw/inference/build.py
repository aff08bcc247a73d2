"""Building runtimes by name: availability checks, the clear refusal, and the registry's build."""

from __future__ import annotations

from typing import Any

from panfw.errors import UserError

# the names panfw fuse --backend took before runtimes were registered
ALIASES = {"onnx": "onnxruntime", "trt": "tensorrt"}


def _registry() -> Any:
    from panfw.plugins import registry

    return registry("runtimes")


def pick_device(device: str | None) -> str:
    """``auto``/None -> cuda when available, else cpu; a CUDA device that is not there is a UserError."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return str(device)


def runtime_reason(name: str, device: str = "cpu") -> str:
    """"" where runtime ``name`` can run on ``device`` here, else why not."""
    entry = _registry().get(name)
    check = entry.meta.get("available")
    reason = check(device) if check else ""  # what is missing first: it says how to install it
    devices = entry.meta.get("devices")
    if not reason and devices and str(device).split(":")[0] not in devices:
        reason = f"runtime {name!r} runs on {', '.join(devices)}, not {device}"
    return reason


def available_runtimes(device: str = "cpu") -> list[str]:
    """The runtimes that can run on ``device`` here."""
    return [e.name for e in _registry() if not runtime_reason(e.name, device)]


def describe_runtimes(device: str | None = None) -> str:
    """'torch, onnxruntime, ... (tensorrt: not here: ...)' for help texts and errors."""
    out, missing = [], []
    for e in _registry():
        devs = e.meta.get("devices") or ("cpu",)
        reasons = [runtime_reason(e.name, d) for d in ([device] if device else devs)]
        (missing if all(reasons) else out).append(e.name)
    text = ", ".join(out)
    return text + (f" (registered but not usable here: {', '.join(missing)})" if missing else "")


def build_runtime(name: str, model_or_path: Any, device: str = "cpu", context: dict | None = None,
                  **options: Any) -> Any:
    """Runtime ``name`` for a module or an exported file on ``device``; ``context`` (bands, ratio,
    size) reaches the factories that take it. Unknown or unusable runtimes are a UserError naming
    the ones this machine has."""
    reg = _registry()
    name = ALIASES.get(name, name)
    if name not in reg:
        reg.get(name)  # the registry's error: did-you-mean and the known names
    reason = runtime_reason(name, device)
    if reason:
        raise UserError(f"runtime {name!r} cannot run here: {reason}. Usable on {device}: "
                        f"{', '.join(available_runtimes(device)) or 'none'}")
    return reg.build(name, model_or_path, device=device, context=context, **options)


def largest_image(test_sets: Any) -> int:
    """The largest PAN-grid H or W among the first image of each test set (what an exported graph must take)."""
    sizes = [max(ts.dataset[0]["pan"].shape[-2:]) for ts in test_sets if len(ts.dataset)]
    return int(max(sizes or [512]))
