"""The training objective: the recipe's weighted loss terms, composed by the core.

Loss plugins only register terms. A reference term (the default, or registered with
``kind="reference"``) is called ``term(pred, target)``; a no-reference term (registered with
``kind="no_reference"``) is called ``term(pred, ms, pan, sensor=..., ratio=...)`` and needs no ground
truth. The composed loss is called ``loss(pred, batch)`` and routes each term to its inputs; a model
that defines ``objective(batch, loss)`` (a flow model's likelihood) is asked for its scalar instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from panfw.errors import DataError, UserError

__all__ = ["KINDS", "ModelObjective", "WeightedLoss", "build_loss", "term_kind"]

KINDS = ("reference", "no_reference")


def term_kind(name: str, module: Any = None) -> str:
    """A loss term's kind: its registration's ``kind`` meta, else the object's ``kind``, else reference."""
    import panfw

    kind = panfw.registry("losses").get(name).meta.get("kind") or getattr(module, "kind", None) or "reference"
    if kind not in KINDS:
        raise UserError(f"loss {name!r} has kind {kind!r}; accepted: {', '.join(KINDS)}")
    return kind


def _sensor_of(batch: Mapping[str, Any]) -> Any:
    s = batch.get("sensor")
    if isinstance(s, list | tuple) and s and all(x == s[0] for x in s):
        return s[0]  # one sensor for the whole batch
    return s


class WeightedLoss(nn.Module):
    """Sum of weight x term; after each call ``last_terms`` maps term names to their (detached) values."""

    def __init__(self, terms: list[tuple[str, float, nn.Module, str]]) -> None:
        super().__init__()
        if not terms:
            raise UserError("loss.terms: the loss needs at least one term with a non-zero weight")
        self.names = [t[0] for t in terms]
        self.weights = [float(t[1]) for t in terms]
        self.terms = nn.ModuleList(t[2] for t in terms)
        self.kinds = [t[3] for t in terms]
        self.last_terms: dict[str, torch.Tensor] = {}

    @property
    def needs_reference(self) -> bool:
        """Whether a term compares against ``gt``."""
        return "reference" in self.kinds

    def forward(self, pred: torch.Tensor, batch: Mapping[str, Any] | torch.Tensor) -> torch.Tensor:
        """``batch``: the batch dict (lms, pan, ms, gt when present, sensor), or the target tensor."""
        if torch.is_tensor(batch):
            batch = {"gt": batch}
        total: Any = 0.0
        values = {}
        for name, weight, term, kind in zip(self.names, self.weights, self.terms, self.kinds):
            if kind == "reference":
                gt = batch.get("gt")
                if gt is None:
                    raise DataError(f"loss term {name!r} compares against the reference image, but the "
                                    "batch has no 'gt'; train on a reduced-resolution split or use "
                                    "no-reference terms")
                value = term(pred, gt.to(pred.dtype))
            else:
                ms, pan = batch.get("ms"), batch.get("pan")
                if ms is None or pan is None:
                    raise DataError(f"loss term {name!r} needs 'ms' and 'pan' in the batch")
                value = term(pred, ms.to(pred.dtype), pan.to(pred.dtype), sensor=_sensor_of(batch),
                             ratio=int(pan.shape[-1] // ms.shape[-1]))
            values[name] = value.detach()
            total = total + weight * value
        self.last_terms = values
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights))


def _term_fields(term: Any) -> tuple[str, float, dict]:
    """(name, weight, options) of a tuple, a recipe LossTerm, or a TOML-style table."""
    if isinstance(term, Mapping):
        options = {k: v for k, v in term.items() if k not in ("name", "weight")}
        return term["name"], term.get("weight", 1.0), options
    if isinstance(term, tuple | list):
        name, weight, *options = term
        return name, weight, dict(options[0]) if options else {}
    return term.name, term.weight, dict(term.options)


def build_loss(terms: Iterable[Any]) -> WeightedLoss:
    """The weighted sum of registered loss terms: (name, weight, options) tuples, recipe ``LossTerm``
    objects or {"name", "weight", ...options} tables. Zero-weight terms are left out."""
    import panfw

    built, seen = [], set()
    for i, term in enumerate(terms):
        name, weight, options = _term_fields(term)
        if weight == 0:
            continue
        try:
            module = panfw.registry("losses").build(name, **options)
            kind = term_kind(name, module)
        except UserError as exc:
            raise UserError(f"loss.terms[{i}]: {exc}") from None
        key = name if name not in seen else f"{name}_{i}"
        seen.add(key)
        built.append((key, weight, module, kind))
    return WeightedLoss(built)


class ModelObjective(nn.Module):
    """The scalar one training step minimises, as a module so DistributedDataParallel syncs its
    gradients: ``model.objective(batch, loss)`` when the model defines it, else
    ``loss(model(lms, pan, ms), batch)``. ``forward_model`` (e.g. a compiled model) runs the forward."""

    def __init__(self, model: nn.Module, loss: nn.Module | None, forward_model: Any = None) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        # not registered as a submodule: the same weights as ``model``
        object.__setattr__(self, "_forward", forward_model)

    @property
    def needs_reference(self) -> bool:
        """Whether a batch must carry ``gt`` (False when the model brings its own objective)."""
        if hasattr(self.model, "objective"):
            return False
        return bool(getattr(self.loss, "needs_reference", True))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        if hasattr(self.model, "objective"):
            return self.model.objective(batch, self.loss)
        if self.loss is None:
            raise UserError("the model defines no objective and the recipe gives no loss terms")
        fwd = self._forward if self._forward is not None else self.model
        pred = fwd(batch["lms"], batch["pan"], batch["ms"])
        return self.loss(pred.float(), batch)
