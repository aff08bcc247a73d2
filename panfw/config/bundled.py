"""The recipes shipped inside the package: ``panfw run quickstart`` works from any folder.

``panfw/recipes`` is the checkout's ``recipes/`` (a link there; a real folder in an installed wheel,
through setuptools package data). A recipe argument is a file path first; when no such file
exists it is looked up among the bundled recipes by name, with or without ``.toml`` and a leading
``recipes/`` (so the README's ``panfw run recipes/quickstart.toml`` works outside the checkout too).
"""

from __future__ import annotations

from pathlib import Path

from panfw.errors import RecipeError

__all__ = ["describe_recipes", "find_recipe", "list_recipes", "recipes_dir"]


def recipes_dir() -> Path:
    """The folder of the bundled recipes."""
    return Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Bundled recipe names, relative to ``recipes_dir`` without ``.toml`` (e.g. "ablations/fusion")."""
    root = recipes_dir()
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.toml"))


def _summary(path: Path) -> str:
    """The first comment line of a recipe file."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") and line.strip("# ").strip():
                return line.strip("# ").strip()
            if line.strip() and not line.startswith("#"):
                break
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def describe_recipes() -> list[tuple[str, str]]:
    """(name, first comment line) of every bundled recipe."""
    root = recipes_dir()
    return [(name, _summary(root / f"{name}.toml")) for name in list_recipes()]


def find_recipe(spec: str | Path) -> Path:
    """The recipe file ``spec`` names: the path itself when it is a file, else a bundled recipe."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.as_posix()
    if name.startswith("recipes/"):
        name = name[len("recipes/"):]
    if name.endswith(".toml"):
        name = name[:-len(".toml")]
    candidate = recipes_dir() / f"{name}.toml"
    if name and candidate.is_file():
        return candidate
    known = list_recipes()
    raise RecipeError(f"recipe file {str(spec)!r} not found, and {name!r} is not a bundled recipe; bundled: "
                      f"{', '.join(known) if known else 'none (the package has no recipes folder)'} "
                      "(panfw recipes lists them)")
