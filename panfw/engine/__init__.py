"""Training and evaluation engine (filled by the engine issue)."""

from __future__ import annotations

from panfw.errors import UserError


def run(recipe: str | None, overrides: list[str] | None = None, resume: str | None = None) -> None:
    """Train and evaluate a recipe."""
    from panfw.recipe import load_recipe

    if recipe:
        load_recipe(recipe, overrides or [])
    raise UserError("panfw run: the training engine is not part of this build yet; "
                    "`panfw validate RECIPE` checks a recipe")
