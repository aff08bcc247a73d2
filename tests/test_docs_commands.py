"""Every ``panfw ...`` command line in README.md and docs/**.md names a real subcommand and real options.

Each line is parsed by the ``panfw`` click group itself (``make_context`` with ``resilient_parsing``,
so nothing runs and required options may be left out), plus checks click does not make in that
mode: choice values written out literally, and no more positional arguments than the command takes.
Synopsis notation is understood: ``[--json]``, ``(--onnx | --trt)``, ``NAME...``, ``bicubic|mtf``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PLACEHOLDER = re.compile(r"[<>A-Z{}]|\.\.\.")  # FILE, <run>, {kind}, ...: not a literal value


@dataclass(frozen=True)
class DocCommand:
    """One documented command line: where it is and its words after ``panfw``."""

    source: str
    line: int
    text: str
    args: tuple[str, ...]


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _words(command: str) -> list[str] | None:
    """The words of a shell line, comments dropped; None when it does not split (a prose fragment)."""
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return None


def _panfw_args(words: list[str]) -> list[str] | None:
    """The arguments after ``panfw`` when this line runs panfw (``panfw``, ``VAR=1 panfw``, ``$ panfw``,
    ``python -m panfw``, ``torchrun ... -m panfw``), else None."""
    for i, word in enumerate(words):
        if word != "panfw":
            continue
        before = words[:i]
        if all(w == "$" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", w) for w in before) or (
                before and before[-1] == "-m"):
            args = words[i + 1:]
            # a pipe or a second command ends this one (``panfw list --json | jq``), but inside a
            # synopsis ``|`` separates alternatives (``(--onnx | --trt)``)
            for j, word in enumerate(args):
                if word in {"&&", ";", "||", ">", "2>", ">>"} or (
                        word == "|" and not (j + 1 < len(args) and args[j + 1].lstrip("([").startswith("-"))):
                    args = args[:j]
                    break
            return args
        return None
    return None


def extract_commands(text: str, source: str = "<text>") -> list[DocCommand]:
    """``panfw`` command lines in a Markdown text: lines of fenced code blocks (continuations with a
    trailing backslash joined) and inline code spans that start with ``panfw ``."""
    found: list[DocCommand] = []
    lines = text.splitlines()
    fence: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        start = i + 1
        match = FENCE.match(line)
        if match:
            marker = match.group(2)
            if fence is None:
                fence = marker
            elif marker.startswith(fence[0]) and len(marker) >= len(fence) and not line.strip()[len(marker):]:
                fence = None
            i += 1
            continue
        if fence is not None:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            candidates = [line.strip()]
        else:
            candidates = [m.group(1).strip() for m in INLINE.finditer(line)]
        for candidate in candidates:
            words = _words(candidate)
            args = _panfw_args(words) if words else None
            # prose and diagrams that start with the word panfw (``panfw (public face) ──► ...``) are not
            # commands: a command's first word is a subcommand or an option
            if args and re.fullmatch(r"-.*|[a-z][a-z0-9_-]*", args[0]):
                found.append(DocCommand(source, start, candidate, tuple(args)))
        i += 1
    return found


def _unsynopsis(args: tuple[str, ...]) -> list[str]:
    """Words with synopsis marks removed: ``[--json]`` -> ``--json``, ``(--a | --b)`` -> ``--a --b``,
    ``NAME...`` -> ``NAME``; empty words and lone ``|`` dropped."""
    out = []
    for word in args:
        word = word.replace("...", "")
        if word.startswith("-"):
            word = word.strip("[]()")
        else:
            word = re.sub(r"^[\[(]+|[\])]+$", "", word)
        if word and word != "|":
            out.append(word)
    return out


def _check_words(command: click.Command, ctx: click.Context, words: list[str]) -> list[str]:
    """Problems click's resilient parsing lets through (it drops unknown options silently): an option
    the command does not have, a literal value outside an option's choices, more positional words than
    the command's arguments take. For a group, only the words before its subcommand are looked at."""
    problems: list[str] = []
    params = command.get_params(ctx)
    by_name = {name: p for p in params if isinstance(p, click.Option) for name in (*p.opts, *p.secondary_opts)}
    group = isinstance(command, click.Group)
    positional = 0
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            positional += len(words) - i - 1
            break
        if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-\d.*", word):
            name, eq, value = word.partition("=")
            param = by_name.get(name)
            if param is None:
                known = ", ".join(sorted(by_name)) or "none"
                problems.append(f"{ctx.command_path}: no option {name} (it has {known})")
                i += 1
                continue
            if not param.is_flag and not param.count:
                # an option named at the end of a line is prose about it (``panfw fuse --bands``);
                # one followed by another of the command's options lacks its value
                if not eq and i + 1 < len(words):
                    value = words[i + 1]
                    if value.partition("=")[0] in by_name:
                        problems.append(f"{ctx.command_path}: {name} needs a value before {value}")
                    i += 1
                if isinstance(param.type, click.Choice) and value and not PLACEHOLDER.search(value):
                    bad = [v for v in value.split("|") if v not in param.type.choices]
                    if bad:
                        problems.append(f"{ctx.command_path}: {name} {value!r}: not one of "
                                        f"{', '.join(map(str, param.type.choices))}")
        elif group:
            break
        else:
            positional += 1
        i += 1
    arguments = [p for p in params if isinstance(p, click.Argument)]
    if not group and not any(p.nargs == -1 for p in arguments) and positional > sum(p.nargs for p in arguments):
        takes = ", ".join(p.human_readable_name for p in arguments) or "none"
        problems.append(f"{ctx.command_path}: {positional} positional arguments, but it takes {takes}")
    return problems


def check_command(group: click.Group, args: list[str] | tuple[str, ...]) -> list[str]:
    """Why ``panfw ARGS`` would not parse (an empty list when it does), without running anything."""
    words = _unsynopsis(tuple(args))
    command: click.Command = group
    name = "panfw"
    parent: click.Context | None = None
    while True:
        try:
            ctx = command.make_context(name, list(words), parent=parent, resilient_parsing=True)
        except click.UsageError as exc:
            return [f"{(parent.command_path + ' ') if parent else ''}{name}: {exc.format_message()}"]
        problems = _check_words(command, ctx, words)
        if problems or not isinstance(command, click.Group):
            return problems
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            return []
        name, words = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        if sub is None:
            return [f"{ctx.command_path}: no command {name!r} (it has {', '.join(command.list_commands(ctx))})"]
        command, parent = sub, ctx


def documented_commands() -> list[DocCommand]:
    """Every ``panfw`` command line in README.md and docs/**.md."""
    out: list[DocCommand] = []
    for path in _doc_files():
        out += extract_commands(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return out


@pytest.fixture(scope="module")
def group() -> click.Group:
    from panfw.cli import build_cli

    return build_cli()


def test_the_docs_have_commands_to_check():
    commands = documented_commands()
    sources = {c.source for c in commands}
    assert len(commands) >= 30, commands
    assert "README.md" in sources and any(s.startswith("docs/") for s in sources)


def test_every_documented_command_parses(group):
    failures = []
    for cmd in documented_commands():
        for problem in check_command(group, cmd.args):
            failures.append(f"{cmd.source}:{cmd.line}: `{cmd.text}`: {problem}")
    assert not failures, "documented panfw commands that do not parse:\n" + "\n".join(failures)


# -- the checker itself, on a fake command line --------------------------------------------------

@pytest.fixture
def fake() -> click.Group:
    @click.group()
    @click.version_option("0")
    def cli() -> None:
        """fake panfw"""

    @cli.command("export")
    @click.argument("model")
    @click.option("--onnx", "fmt", flag_value="onnx")
    @click.option("--trt", "fmt", flag_value="tensorrt")
    @click.option("-o", "--output", required=True)
    @click.option("--compress", type=click.Choice(["none", "lzw"]), default="none")
    def export(model, fmt, output, compress) -> None:
        raise AssertionError("the checker must not run a command")

    @cli.group("data")
    def data() -> None:
        raise AssertionError("the checker must not run a group")

    @data.command("check")
    @click.argument("root", required=False)
    def check(root) -> None:
        raise AssertionError("the checker must not run a command")

    return cli


@pytest.mark.parametrize("line", [
    "panfw export runs/x/best.pt --onnx -o m.onnx",
    "panfw export runs/x/best.pt --onnx",                    # a required option may be left out
    "panfw export CHECKPOINT (--onnx | --trt) [-o OUT] [--compress none|lzw]",
    "panfw export m.pt --compress=lzw",
    "panfw data check",
    "panfw data check [ROOT]",
    "panfw --version",
    "panfw export -o",                                       # prose naming an option
])
def test_checker_accepts_what_parses(fake, line):
    assert check_command(fake, shlex.split(line)[1:]) == []


@pytest.mark.parametrize("line, why", [
    ("panfw export runs/x/best.pt --onxx", "no option --onxx"),          # an option renamed
    ("panfw exprt runs/x/best.pt --onnx", "no command 'exprt'"),          # a command renamed
    ("panfw data chek", "no command 'chek'"),                             # a subcommand renamed
    ("panfw data check a b", "2 positional arguments"),
    ("panfw export m.pt --compress zip", "not one of none, lzw"),
    ("panfw export m.pt [--compress none|zstd]", "not one of none, lzw"),
    ("panfw export m.pt -o --onnx", "-o needs a value before --onnx"),
    ("panfw --verbose data check", "no option --verbose"),
])
def test_checker_refuses_what_does_not(fake, line, why):
    problems = check_command(fake, shlex.split(line)[1:])
    assert problems and why in problems[0], problems


def test_a_renamed_option_of_the_real_cli_is_caught(group, monkeypatch):
    fuse = group.get_command(click.Context(group), "fuse")
    option = next(p for p in fuse.params if "--overlap" in p.opts)
    monkeypatch.setattr(option, "opts", ["--tile-overlap"])
    assert check_command(group, ["fuse", "--pan", "p.tif", "--tile-overlap", "8"]) == []
    problems = check_command(group, ["fuse", "--pan", "p.tif", "--overlap", "8"])
    assert problems and "no option --overlap" in problems[0]


def test_extraction_reads_fences_inline_spans_and_prefixes():
    text = "\n".join([
        "Run `panfw list models --json` first; `panfw.create` is Python, not a command.",
        "```",
        "panfw run recipes/quickstart.toml   # a comment",
        "OMP_NUM_THREADS=1 panfw run r.toml -s train.steps=2",
        "torchrun --nproc_per_node=2 -m panfw run r.toml",
        "panfw export m.pt \\",
        "    --onnx",
        "panfw list --json | jq .",
        "pip install panfw",
        "```",
        "    panfw not-in-a-fence-so-ignored",
        "```",
        "panfw (public face) ──► plugins",
        "```",
    ])
    got = [c.args for c in extract_commands(text)]
    assert got == [("list", "models", "--json"), ("run", "recipes/quickstart.toml"),
                   ("run", "r.toml", "-s", "train.steps=2"), ("run", "r.toml"), ("export", "m.pt", "--onnx"),
                   ("list", "--json")]


# -- the generated pages (docs/hooks/generate.py) ----------------------------------------------------

def _hook(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("panfw_docs_hook", ROOT / "docs" / "hooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("PANFW_DOCS_COST", "0")  # the measurements are the build's; here, what is listed
    return module


def test_the_zoo_lists_every_registered_entry_and_a_new_plugin_without_edits(monkeypatch, plugin_registered):
    import types

    import torch

    import panfw
    from panfw.describe import record
    from panfw.registries import KINDS

    class Probe(torch.nn.Module):
        """Docs probe: the identity on lms."""

        def __init__(self, bands: int = 4, width: int = 7) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(bands, bands, 1)

        def forward(self, lms, pan, ms):
            return lms + 0 * self.conv(lms)

    def register_models(register):
        register("docs_probe_model", Probe, family="probe", paper="A. Author, \"A probe\"")

    plugin_registered(types.SimpleNamespace(register_models=panfw.hookimpl(register_models)), "docs_probe")
    pages = _hook(monkeypatch).zoo_pages()
    assert set(pages) == {"zoo/index.md", *(f"zoo/{k}.md" for k in KINDS)}
    for kind in KINDS:
        for entry in panfw.registry(kind):
            assert f"## {entry.name} {{ #{entry.name} }}" in pages[f"zoo/{kind}.md"], (kind, entry.name)
    models = pages["zoo/models.md"]
    assert "Docs probe: the identity on lms." in models and "| `width` | `7` |" in models
    assert "- paper: A. Author, \"A probe\"" in models and "[docs_probe_model](models.md#docs_probe_model)" in pages[
        "zoo/index.md"]

    # with the measurements on (as CI builds), the model's section has its count and measured FLOPs
    module = _hook(monkeypatch)
    section = "\n".join(module._entry_section(record(panfw.registry("models").get("docs_probe_model")), {}))
    assert "- parameters: 20 trainable at 4 bands" in section and "G measured at a 128×128 PAN" in section


def test_the_recipes_page_lists_every_bundled_recipe(monkeypatch):
    page = _hook(monkeypatch).recipes_page()
    for path in (ROOT / "recipes").rglob("*.toml"):
        name = path.relative_to(ROOT / "recipes").with_suffix("").as_posix()
        assert f"| [{name}](#{name.replace('/', '-')}) |" in page, name
    assert "Paper Table 7: the fusion module of PanTiny Big" in page  # the leading comment
    assert ("| [ablations/loss](#ablations-loss) | Paper Table 6: loss weights (lambda1 Charbonnier, lambda2 1 - SSIM, "
            "lambda3 focal), Eq. 5-8. | ../paper_base.toml | [pantiny_big](zoo/models.md#pantiny_big) "
            "(fusion='gated_conv') |") in page


def test_the_models_guide_figures_are_what_panfw_measures():
    """docs/models.md's PanTiny table (parameters, FLOPs @128²) against a fresh count and measurement:
    the zoo and the reproduction page compute these at build time, the guide states them by hand."""
    import panfw
    from panfw.evaluation.cost import count_params, measure_flops

    rows = {line.split("|")[1].strip(): line for line in (ROOT / "docs" / "models.md").read_text().splitlines()
            if line.startswith("| `pantiny_")}
    for name in ("pantiny_small", "pantiny_big", "pantiny_large", "pantiny_huge"):
        if name not in panfw.registry("models"):
            continue
        model = panfw.create_model(name)
        row = rows[f"`{name}`"]
        assert f"| {count_params(model):,} |" in row, row
        assert f"| {measure_flops(model, bands=4, size=128) / 1e9:.3f} G |" in row, row
