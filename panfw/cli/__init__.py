"""The ``panfw`` command line: thin click commands over functions tests can call directly.

Exit codes: 0 success, 2 a user error (message on stderr, no traceback), 1 an internal error.
Plugins add commands through the ``register_commands(cli)`` hook.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import click

import panfw
from panfw.errors import PluginError, UserError
from panfw.registries import KINDS


def _user_error(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class PanfwGroup(click.Group):
    """A click group that turns UserError into exit code 2 and other exceptions into exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (UserError, PluginError) as exc:
            _user_error(exc)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # the reader (``panfw list | head``) went away: not an error; silence the flush at exit
            sys.stdout = open(os.devnull, "w")
            sys.exit(0)
        except OSError as exc:
            if exc.errno is None:  # not a file-system error the user can fix: report it as a bug
                click.echo("internal error (please report it):\n" + traceback.format_exc(), err=True)
                sys.exit(1)
            # an unwritable output, a missing folder, a full disk: one line, exit 2
            where = f"{exc.filename}: " if exc.filename else ""
            _user_error(f"{where}{exc.strerror or exc}")
        except Exception:  # noqa: BLE001
            click.echo("internal error (please report it):\n" + traceback.format_exc(), err=True)
            sys.exit(1)


@click.group(cls=PanfwGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(panfw.__version__, prog_name="panfw")
def cli() -> None:
    """panfw: train, evaluate, export and apply pan-sharpening models."""


def _echo_json(data: object) -> None:
    import json

    click.echo(json.dumps(data, indent=2))


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins: package, version, hooks, what each registered, and failures."""
    from panfw.plugins import get_system

    system = get_system()
    rows = sorted(system.info.values(), key=lambda i: i.name)
    if as_json:
        _echo_json([{"name": i.name, "module": i.module, "package": i.package, "version": i.version,
                     "hooks": i.hooks, "registered": i.registered, "error": i.error} for i in rows])
        return
    for info in rows:
        pkg = f"{info.package} {info.version}".strip() or "(not from a package)"
        status = "FAILED" if info.error else "ok"
        click.echo(f"{info.name}  [{status}]  {pkg}  module {info.module}")
        if info.hooks:
            click.echo(f"    hooks: {', '.join(info.hooks)}")
        for kind, names in sorted(info.registered.items()):
            click.echo(f"    {kind}: {', '.join(names)}")
        if info.error:
            click.echo(f"    error: {info.error}")


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON records (name, kind, summary, plugin, options, meta; models also cost).")
@click.option("--no-cost", is_flag=True, help="With --json: leave out the models' parameters and FLOPs.")
def list_cmd(kind: str | None, as_json: bool, no_cost: bool) -> None:
    """List registered models, fusions, refines, losses, datasets, metrics or runtimes (all kinds
    when KIND is not given)."""
    from panfw.describe import record
    from panfw.registries import kind_of

    kinds = [kind_of(kind).name] if kind else list(KINDS)
    if as_json:
        records = [record(e, cost=not no_cost) for k in kinds for e in panfw.registry(k)]
        _echo_json(records)
        return
    for k in kinds:
        click.echo(f"{k}:")
        for entry in panfw.registry(k):
            click.echo(f"  {entry.name:<24} {entry.summary}  [{entry.plugin}]")


@cli.command("show")
@click.argument("kind")
@click.argument("name")
@click.option("--bands", type=int, default=None,
              help="Band count used to build a model [default: the model's own].")
@click.option("--size", default=128, show_default=True, help="PAN size for the FLOP count.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON record.")
def show_cmd(kind: str, name: str, bands: int | None, size: int, as_json: bool) -> None:
    """Show one registered thing: summary, options, meta, and for models parameters and FLOPs."""
    from panfw.describe import describe, record
    from panfw.registries import kind_of

    if as_json:
        _echo_json(record(panfw.registry(kind_of(kind).name).get(name), bands=bands, size=size))
        return
    click.echo(describe(kind, name, bands=bands, size=size))


@cli.command("validate")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key.")
def validate_cmd(recipe: str, overrides: tuple[str, ...]) -> None:
    """Validate a recipe and print it resolved (extends and overrides applied)."""
    from panfw.config.recipe import load_recipe

    r = load_recipe(recipe, list(overrides))
    click.echo(r.to_toml().rstrip())
    if r.sweep:
        click.echo(f"# sweep: {len(r.sweep)} variants: {', '.join(v.name for v in r.sweep)}")


@cli.command("run")
@click.argument("recipe", type=click.Path(dir_okay=False), required=False)
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key.")
@click.option("--resume", type=click.Path(file_okay=False), help="Continue a run directory.")
def run_cmd(recipe: str | None, overrides: tuple[str, ...], resume: str | None) -> None:
    """Train and evaluate a recipe (a sweep runs every variant and ends with a comparison table)."""
    from panfw.procedures import run

    if not recipe and not resume:
        raise UserError("panfw run: give a RECIPE file or --resume RUN_DIR")
    run(recipe, list(overrides), resume=resume)


@cli.command("recipes")
def recipes_cmd() -> None:
    """List the recipes shipped with panfw (panfw run NAME runs one from any folder)."""
    from panfw.config.bundled import describe_recipes, recipes_dir

    rows = describe_recipes()
    click.echo(f"bundled recipes ({recipes_dir()}):")
    for name, summary in rows:
        click.echo(f"  {name:<28} {summary}")


from panfw.cli.deploy import export_cmd, fuse_cmd  # noqa: E402

cli.add_command(export_cmd)
cli.add_command(fuse_cmd)

from panfw.cli.eval import eval_cmd  # noqa: E402

cli.add_command(eval_cmd)

from panfw.cli.adapt import adapt_cmd  # noqa: E402

cli.add_command(adapt_cmd)


def build_cli() -> click.Group:
    """The command line with every plugin's commands added."""
    from panfw.plugins import loaded_system

    if not getattr(cli, "_plugins_added", False):
        cli._plugins_added = True
        loaded_system().add_commands(cli)
    return cli


def main() -> None:
    """Console entry point."""
    warnings.simplefilter("default")
    try:
        group = build_cli()
    except (UserError, PluginError) as exc:
        _user_error(exc)
    group(prog_name="panfw")
