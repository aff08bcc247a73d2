"""``panfw run``: dispatch a recipe to its procedure, every variant of a sweep, and ``--resume``.

``run(recipe, overrides, resume)`` trains a recipe (every variant of a sweep, then a comparison
table) into ``<output.dir>/<recipe name>/<timestamp>/``; see docs/training.md.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import panfw.engine.distributed as D
from panfw.config.recipe import Recipe, load_recipe
from panfw.errors import UserError
from panfw.procedures.train import train

__all__ = ["SWEEP_FILE", "run"]

SWEEP_FILE = "sweep.toml"


def _new_run_dir(base: Path, world: D.World) -> Path:
    """``base/<timestamp>`` (a suffix when taken); rank 0 chooses, every rank learns the name."""
    path = None
    if world.is_main:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = base / stamp
        n = 1
        while path.exists():
            path = base / f"{stamp}-{n}"
            n += 1
        path.mkdir(parents=True)
        path = str(path)
    return Path(D.broadcast(world, path))


def run(recipe: str | None, overrides: list[str] | None = None, resume: str | None = None) -> dict:
    """Train and evaluate a recipe file, or continue the run directory ``resume``.

    Returns results.json's content (a sweep: {variant: results}) on rank 0, {} elsewhere.
    """
    overrides = list(overrides or [])
    if resume:
        return _resume(Path(resume), recipe, overrides)
    if not recipe:
        raise UserError("panfw run: give a RECIPE file or --resume RUN_DIR")
    r = load_recipe(recipe, overrides)
    world = D.setup(r.train.device)
    with D.session(world):
        base = Path(r.output.dir) / r.name
        if not r.sweep:
            return train(r, _new_run_dir(base, world), world)
        sweep_dir = _new_run_dir(base, world)
        if world.is_main:
            (sweep_dir / SWEEP_FILE).write_text(r.to_toml(), encoding="utf-8")
        return _run_sweep(r, sweep_dir, world)


def _run_sweep(r: Recipe, sweep_dir: Path, world: D.World, resume: bool = False) -> dict:
    out: dict = {}
    for name, variant in r.variants():
        vdir = sweep_dir / name
        done = vdir / "results.json"
        if resume and done.is_file() and world.is_main:
            out[name] = json.loads(done.read_text(encoding="utf-8"))
            print(f"sweep variant {name}: already finished", flush=True)
            continue
        if world.is_main:
            vdir.mkdir(parents=True, exist_ok=True)
            print(f"== sweep variant {name} ==", flush=True)
        D.barrier(world)
        out[name] = train(variant, vdir, world, resume=resume)
    if world.is_main:
        from panfw.evaluation.report import write_comparison

        text = write_comparison(sweep_dir, r.name, out)
        print(text, flush=True)
    return out if world.is_main else {}


def _resume(run_dir: Path, recipe: str | None, overrides: list[str]) -> dict:
    if not run_dir.is_dir():
        raise UserError(f"--resume {str(run_dir)!r}: not a run directory")
    sweep = (run_dir / SWEEP_FILE).is_file()
    source = run_dir / (SWEEP_FILE if sweep else "recipe.toml")
    if not source.is_file():
        raise UserError(f"--resume {str(run_dir)!r}: no recipe.toml or {SWEEP_FILE} there; "
                        "give the folder panfw run created (runs/<name>/<timestamp>)")
    if recipe:
        print(f"note: resuming {run_dir} with its own recipe; {recipe} is not read", flush=True)
    r = load_recipe(source, overrides)
    world = D.setup(r.train.device)
    with D.session(world):
        if sweep:
            if overrides and world.is_main:
                (run_dir / SWEEP_FILE).write_text(r.to_toml(), encoding="utf-8")
            return _run_sweep(r, run_dir, world, resume=True)
        if not (run_dir / "last.pt").is_file():
            raise UserError(f"--resume {str(run_dir)!r}: no last.pt there yet; start the run again")
        return train(r, run_dir, world, resume=True)
