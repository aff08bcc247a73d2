"""The command line: exit codes 0 / 2 (user error, no traceback) / 1 (internal error)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types

import pytest
from click.testing import CliRunner
from torch import nn

import panfw
from panfw.cli import build_cli
from panfw.registries import KINDS


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(build_cli(), list(args), catch_exceptions=False)


class Boom(nn.Module):
    def __init__(self, bands: int = 4):
        raise RuntimeError("bug inside the factory")


def _plugin():
    mod = types.ModuleType("cli_test_plugin")

    @panfw.hookimpl
    def register_models(register):
        register("cli_boom", Boom, summary="raises")
        register("cli_conv", lambda bands=4: _Conv(bands), summary="a 3x3 conv")

    @panfw.hookimpl
    def register_losses(register):
        register("cli_l1", nn.L1Loss)

    @panfw.hookimpl
    def register_runtimes(register):
        register("cli_eager", _eager, summary="calls the model", available=True)

    mod.register_models = register_models
    mod.register_losses = register_losses
    mod.register_runtimes = register_runtimes
    return mod


def _eager(model, device: str = "cpu", batch: tuple = (1, 2)):
    return model


class _Conv(nn.Module):
    def __init__(self, bands):
        super().__init__()
        self.conv = nn.Conv2d(bands, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        return self.conv(lms)


@pytest.fixture(autouse=True)
def cli_plugin(plugin_registered):
    plugin_registered(_plugin(), "cli_test_plugin")


def test_version(runner):
    result = invoke(runner, "--version")
    assert result.exit_code == 0 and panfw.__version__ in result.output


def test_plugins_lists_packages_hooks_and_registrations(runner):
    result = invoke(runner, "plugins")
    assert result.exit_code == 0
    assert "cli_test_plugin  [ok]" in result.output and "models: cli_boom, cli_conv" in result.output
    assert "hooks: register_losses, register_models, register_runtimes" in result.output
    assert "losses  [ok]  panfw " in result.output
    rows = {r["name"]: r for r in json.loads(invoke(runner, "plugins", "--json").output)}
    assert rows["cli_test_plugin"]["registered"] == {"models": ["cli_boom", "cli_conv"], "losses": ["cli_l1"],
                                                     "runtimes": ["cli_eager"]}
    assert rows["cli_test_plugin"]["error"] == "" and rows["pantiny"]["package"] == "panfw"


def test_list_json_for_every_kind(runner):
    for kind in KINDS:
        result = invoke(runner, "list", kind, "--json", "--no-cost")
        assert result.exit_code == 0, result.output
        records = json.loads(result.output)
        assert [r["name"] for r in records] == panfw.registry(kind).names()
        assert all(r["kind"] == kind and "cost" not in r for r in records)
    records = {r["name"]: r for r in json.loads(invoke(runner, "list", "runtime", "--json").output)}
    assert records["cli_eager"] == {
        "name": "cli_eager", "kind": "runtimes", "summary": "calls the model", "plugin": "cli_test_plugin",
        "options": [{"name": "model", "required": True, "default": None},
                    {"name": "device", "required": False, "default": "cpu"},
                    {"name": "batch", "required": False, "default": [1, 2]}],
        "accepts_any_option": False, "meta": {"available": True}}


def test_show_json_gives_the_model_cost(runner):
    result = invoke(runner, "show", "model", "cli_conv", "--json")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.output)
    assert rec["plugin"] == "cli_test_plugin" and rec["options"] == [{"name": "bands", "required": False,
                                                                      "default": 4}]
    # a 3x3 conv, 4 -> 4 bands: 4*4*9 weights + 4 biases; 2 FLOPs per multiply-add on a 128 x 128 PAN
    assert rec["cost"] == {"bands": 4, "ratio": 4, "size": 128, "params": 148, "params_total": 148,
                           "flops": 2 * 4 * 4 * 9 * 128 * 128, "error": None}
    rec = json.loads(invoke(runner, "show", "model", "cli_conv", "--json", "--bands", "8", "--size", "32").output)
    assert rec["cost"]["params"] == 8 * 8 * 9 + 8 and rec["cost"]["flops"] == 2 * 8 * 8 * 9 * 32 * 32
    rec = json.loads(invoke(runner, "show", "loss", "cli_l1", "--json").output)
    assert rec["kind"] == "losses" and "cost" not in rec
    assert {"name": "reduction", "required": False, "default": "mean"} in rec["options"]


def test_create_passes_context_where_declared():
    model = panfw.create("models", "cli_conv", context={"bands": 8, "sensor": "wv3", "ratio": 4})
    assert model.conv.in_channels == 8
    assert panfw.create_model("cli_conv", context={"bands": 8}, bands=3).conv.in_channels == 3


def test_list_and_show(runner):
    result = invoke(runner, "list", "models")
    assert result.exit_code == 0 and "cli_conv" in result.output and "a 3x3 conv" in result.output
    result = invoke(runner, "show", "model", "cli_conv", "--size", "16")
    assert result.exit_code == 0
    assert "parameters: 148 trainable (at 4 bands)" in result.output  # 4*4*9 + 4
    assert "FLOPs:" in result.output


class _FrozenBiasPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def cli_frozen_bias(bands: int = 4):
            """A 3x3 conv whose bias is frozen (as a reference code's built-but-unused parameters)."""
            model = _Conv(bands)
            model.conv.bias.requires_grad_(False)
            return model

        register("cli_frozen_bias", cli_frozen_bias)


def test_show_counts_frozen_parameters_apart(runner, plugin_registered):
    plugin_registered(_FrozenBiasPlugin, "cli-frozen-bias")
    result = invoke(runner, "show", "model", "cli_frozen_bias", "--size", "16")
    assert result.exit_code == 0, result.output
    assert "parameters: 144 trainable, 4 frozen: 148 in all (at 4 bands)" in result.output
    rec = json.loads(invoke(runner, "show", "model", "cli_frozen_bias", "--json", "--size", "16").output)
    assert (rec["cost"]["params"], rec["cost"]["params_total"]) == (144, 148)


def test_user_errors_exit_2_without_traceback(runner, tmp_path):
    result = invoke(runner, "show", "model", "cli_cnov")
    assert result.exit_code == 2
    assert 'unknown model \'cli_cnov\' (did you mean "cli_conv"?)' in result.stderr
    assert "Traceback" not in result.stderr
    result = invoke(runner, "show", "modle", "x")
    assert result.exit_code == 2 and "unknown kind 'modle'" in result.stderr
    result = invoke(runner, "list", "runtimez", "--json")
    assert result.exit_code == 2
    assert 'unknown kind \'runtimez\' (did you mean "runtime' in result.stderr and "accepted: models," in result.stderr
    result = invoke(runner, "validate", str(tmp_path / "none.toml"))
    assert result.exit_code == 2 and "not found" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "cli_conv"\n[train]\nepocs = 1\n')
    result = invoke(runner, "validate", str(bad))
    assert result.exit_code == 2
    assert "bad.toml: train.epocs: unknown key (did you mean \"epochs\"?)" in result.stderr
    result = invoke(runner, "no-such-command")
    assert result.exit_code == 2


def test_internal_error_exits_1_with_report(runner):
    result = invoke(runner, "show", "model", "cli_boom")
    # a factory bug while describing is an internal error
    assert result.exit_code == 1
    assert "internal error" in result.stderr and "bug inside the factory" in result.stderr


def test_validate_prints_the_resolved_recipe(runner, tmp_path):
    p = tmp_path / "r.toml"
    p.write_text(textwrap.dedent("""
        [model]
        name = "cli_conv"
        [[loss.terms]]
        name = "cli_l1"
        [eval]
        rr_metrics = []
        fr_metrics = []
    """))
    result = invoke(runner, "validate", str(p), "-s", "train.epochs=3")
    assert result.exit_code == 0, result.stderr
    assert "epochs = 3" in result.output and 'name = "cli_conv"' in result.output


def test_console_script_exit_code_for_user_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "panfw", "validate", str(tmp_path / "x.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_help_and_plugin_loading_import_no_torch():
    """`panfw --help` stays fast: loading every plugin and building the command line imports no torch
    (the register hooks, which import the implementations, run when a registry is first needed)."""
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom panfw.cli import build_cli\n"
            "r = CliRunner().invoke(build_cli(), ['--help'])\nassert r.exit_code == 0, r.output\n"
            "assert 'data' in r.output and 'fuse' in r.output, r.output\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", "panfw --help imported torch"
