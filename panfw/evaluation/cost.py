"""A model's cost: trainable parameters and measured FLOPs, the one implementation (show, train,
evaluate, report and the baselines all use it)."""

from __future__ import annotations

from typing import Any

import torch

FIGURE_SIZE = 128  # the PAN size at which the field quotes FLOPs (the paper tables use 128 x 128)


def count_params(model: Any, trainable: bool = True) -> int:
    """Trainable parameters (all of them with ``trainable=False``, frozen ones included, as the
    reference codes count); 0 for a parameter-free method or a callable that is not a module."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return 0
    return sum(p.numel() for p in parameters() if p.requires_grad or not trainable)


def _device(model: Any) -> torch.device:
    for tensor in (*getattr(model, "parameters", list)(), *getattr(model, "buffers", list)()):
        return tensor.device
    return torch.device("cpu")


def measure_flops(model: Any, bands: int = 4, size: int = FIGURE_SIZE, ratio: int = 4) -> int:
    """FLOPs (2 x MACs) of one forward pass on random inputs at a PAN size of size x size, measured
    with ``torch.utils.flop_counter`` (not the 2 x params x H x W proxy some paper tables use).

    The global RNG is left as it was and the model goes back to its training mode; a model the
    counter cannot run raises (callers that can live without the figure use ``model_cost``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from panfw.layers import cpu as cpu_path

    device = _device(model)
    training = getattr(model, "training", None)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        lms = torch.rand(1, bands, size, size, device=device)
        pan = torch.rand(1, 1, size, size, device=device)
        ms = torch.rand(1, bands, size // ratio, size // ratio, device=device)
        if training is not None:
            model.eval()
        try:
            # the plain modules: layers/cpu.py's striped inference path does the same arithmetic in
            # pieces the FLOP counter does not see (PanTiny Small read 1.35 G instead of 1.67 G)
            with torch.no_grad(), cpu_path.enabled(False), FlopCounterMode(display=False) as counter:
                model(lms, pan, ms)
        finally:
            if training:
                model.train()
    return int(counter.get_total_flops())


def model_cost(model: Any, bands: int, ratio: int = 4, size: int = FIGURE_SIZE) -> dict[str, Any]:
    """``{"params", "flops", "flops_size"}`` for a report; ``flops`` is None where not measurable."""
    try:
        flops: int | None = measure_flops(model, bands=bands, size=size, ratio=ratio)
    except Exception:  # noqa: BLE001 - a model the FLOP counter cannot trace still gets its row
        flops = None
    return {"params": count_params(model), "flops": flops, "flops_size": size}
