"""Plugin manager: hooks called through pluggy (specname, tryfirst/trylast, optionalhook), per-plugin
attribution, entry-point loading, isolation of broken plugins, strict mode, duplicates."""

from __future__ import annotations

import importlib.metadata
import types

import pytest
from torch import nn

import panfw
from panfw import hookspecs, plugins
from panfw.errors import DuplicateNameError, PluginError, RegistryError
from panfw.plugins import PanfwWarning, PluginSystem, get_system
from panfw.registries import KIND_TABLE, KINDS

BUILTIN = {name for name, _ in plugins._builtin_plugins()}


class _Fake:
    """A fake entry point, the shape importlib.metadata gives."""

    def __init__(self, name, value, loader):
        self.name, self.value, self._loader = name, value, loader
        self.dist = None

    def load(self):
        return self._loader()


def _module_with_fusion(name: str, block_name: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    @panfw.hookimpl
    def register_fusions(register):
        register(block_name, lambda dim, pan_channels=1: nn.Identity())

    mod.register_fusions = register_fusions
    return mod


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the ``panfw`` entry points by fakes (no bundled plugin: the tests see only theirs)."""
    monkeypatch.delenv("PANFW_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("PANFW_DISABLE_PLUGINS", raising=False)

    def install(eps):
        real = importlib.metadata.entry_points

        def fake(**kw):
            return list(eps) if kw.get("group") == "panfw" else real(**kw)

        monkeypatch.setattr(importlib.metadata, "entry_points", fake)

    return install


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.delenv("PANFW_STRICT_PLUGINS", raising=False)


def test_bundled_plugins_come_from_entry_points():
    system = get_system()
    eps = {ep.name for ep in importlib.metadata.entry_points(group="panfw")}
    assert {"pantiny", "losses", "metrics", "datasets"} <= eps
    for name in ("pantiny", "losses", "metrics", "datasets"):
        assert system.info[name].package == "panfw"
    assert panfw.registry("models").get("pantiny_big").plugin == "pantiny"
    assert "pantiny_big" in system.info["pantiny"].registered["models"]


def test_every_kind_has_a_documented_hook_and_a_registry():
    for kind in KIND_TABLE:
        spec = getattr(hookspecs, kind.hook)
        assert spec.__doc__ and spec.__doc__.startswith("Register"), kind.hook
        assert panfw.registry(kind.name).kind == kind.name
        assert panfw.registry(kind.alias) is panfw.registry(kind.name)
    assert "runtimes" in KINDS
    with pytest.raises(RegistryError, match=r"unknown kind 'modles' \(did you mean \"models\"\?\)"):
        panfw.registry("modles")


def test_specname_hookimpl_is_called_and_attributed():
    class Blocks:
        @panfw.hookimpl(specname="register_fusions")
        def add_my_blocks(self, register):
            register("spec_block", lambda dim, pan_channels=1: nn.Identity())

        @panfw.hookimpl(specname="register_runtimes")
        def add_runtime(self, register):
            register("spec_runtime", lambda model, device="cpu": model)

    system = PluginSystem()
    system.register(Blocks(), name="by_specname")
    assert system.registries["fusions"].get("spec_block").plugin == "by_specname"
    assert system.registries["runtimes"].get("spec_runtime").plugin == "by_specname"
    info = system.info["by_specname"]
    assert info.hooks == ["register_fusions", "register_runtimes"]
    assert info.registered == {"fusions": ["spec_block"], "runtimes": ["spec_runtime"]}


def _recording_plugin(name: str, calls: list, **marks) -> types.ModuleType:
    mod = types.ModuleType(name)

    @panfw.hookimpl(**marks)
    def register_losses(register):
        calls.append(name)
        register(f"{name}_loss", nn.L1Loss)

    mod.register_losses = register_losses
    return mod


def test_tryfirst_and_trylast_order_plugins(fake_entry_points, lenient):
    calls: list[str] = []
    # name order (the loading order) is a, b, c; the markers must win over it
    mods = {"a": _recording_plugin("a", calls, trylast=True), "b": _recording_plugin("b", calls),
            "c": _recording_plugin("c", calls, tryfirst=True)}
    fake_entry_points([_Fake(n, n, lambda m=m: m) for n, m in mods.items()])
    system = PluginSystem()
    system.load_entrypoints()
    assert calls == ["c", "b", "a"]
    assert {e.name: e.plugin for e in system.registries["losses"]} == {"a_loss": "a", "b_loss": "b", "c_loss": "c"}


def test_unmarked_plugins_run_in_name_order(fake_entry_points, lenient):
    calls: list[str] = []
    mods = {n: _recording_plugin(n, calls) for n in ("b", "c", "a")}
    fake_entry_points([_Fake(n, n, lambda m=m: m) for n, m in mods.items()])
    PluginSystem().load_entrypoints()
    assert calls == ["a", "b", "c"]


def test_tryfirst_orders_two_implementations_in_one_plugin():
    calls: list[str] = []

    class Two:
        @panfw.hookimpl(specname="register_metrics")
        def late(self, register):
            calls.append("late")

        @panfw.hookimpl(specname="register_metrics", tryfirst=True)
        def early(self, register):
            calls.append("early")

    PluginSystem().register(Two(), name="two")
    assert calls == ["early", "late"]


def test_broken_plugin_is_reported_and_the_rest_works(fake_entry_points, lenient):
    def boom():
        raise ImportError("No module named 'missing_dependency'")

    good = _module_with_fusion("good_plugin", "good_block")
    fake_entry_points([_Fake("broken", "broken_plugin", boom), _Fake("good", "good_plugin", lambda: good)])
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match="broken"):
        system.load_entrypoints()
    assert "missing_dependency" in system.info["broken"].error
    assert [f.name for f in system.failures()] == ["broken"]
    assert system.registries["fusions"].get("good_block").plugin == "good"


def test_plugin_whose_register_hook_raises_is_removed_whole(lenient):
    mod = types.ModuleType("half_broken")

    @panfw.hookimpl
    def register_models(register):
        register("fine_model", lambda bands=4: nn.Identity())

    @panfw.hookimpl
    def register_losses(register):
        register("fine_loss", nn.L1Loss)
        raise RuntimeError("bad registration")

    @panfw.hookimpl
    def register_commands(cli):
        raise AssertionError("a failed plugin must not add commands")

    mod.register_models, mod.register_losses, mod.register_commands = register_models, register_losses, register_commands
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match="bad registration"):
        system.register(mod, name="half_broken")
    assert "fine_loss" not in system.registries["losses"]  # nothing half-registered
    assert "fine_model" not in system.registries["models"]  # nor what its other hooks registered
    info = system.info["half_broken"]
    assert "register_losses failed: RuntimeError: bad registration" in info.error and info.registered == {}
    assert system.pm.get_plugin("half_broken") is None
    system.add_commands(object())  # would raise AssertionError if the failed plugin were still called


def test_strict_mode_makes_a_broken_plugin_fatal(fake_entry_points, monkeypatch):
    monkeypatch.setenv("PANFW_STRICT_PLUGINS", "1")

    def boom():
        raise ImportError("nope")

    fake_entry_points([_Fake("broken", "broken_plugin", boom)])
    with pytest.raises(PluginError, match="broken.*nope"):
        PluginSystem().load_entrypoints()

    mod = types.ModuleType("raising")

    @panfw.hookimpl
    def register_fusions(register):
        raise ValueError("no good")

    mod.register_fusions = register_fusions
    with pytest.raises(PluginError, match="'raising'.*register_fusions failed: ValueError: no good"):
        PluginSystem().register(mod, name="raising")


def test_fatal_load_error_is_not_cached(fake_entry_points, monkeypatch):
    monkeypatch.setenv("PANFW_STRICT_PLUGINS", "1")

    def boom():
        raise ImportError("nope")

    fake_entry_points([_Fake("broken", "broken_plugin", boom)])
    monkeypatch.setattr(plugins, "_system", None)
    for _ in range(2):  # the second use fails the same way instead of returning a half-loaded system
        with pytest.raises(PluginError, match="nope"):
            get_system()


def test_duplicate_names_across_two_plugins_name_both(lenient):
    system = PluginSystem()
    system.register(_module_with_fusion("first_pkg", "same_block"), name="first")
    second = _module_with_fusion("second_pkg", "same_block")

    @panfw.hookimpl
    def register_losses(register):
        register("second_loss", nn.L1Loss)

    second.register_losses = register_losses
    with pytest.raises(DuplicateNameError) as err:
        system.register(second, name="second")
    assert (err.value.kind, err.value.name, err.value.first, err.value.second) == ("fusions", "same_block",
                                                                                 "first", "second")
    assert "'same_block' is registered twice: by plugin 'first' and by plugin 'second'" in str(err.value)
    assert system.registries["fusions"].get("same_block").plugin == "first"
    assert "second_loss" not in system.registries["losses"]
    assert "registered twice" in system.info["second"].error


def test_duplicate_in_one_load_is_fatal_even_when_lenient(fake_entry_points, lenient):
    a, b = _module_with_fusion("pa", "clash"), _module_with_fusion("pb", "clash")
    fake_entry_points([_Fake("pa", "pa", lambda: a), _Fake("pb", "pb", lambda: b)])
    with pytest.raises(DuplicateNameError, match="by plugin 'pa' and by plugin 'pb'"):
        PluginSystem().load_entrypoints()


def test_unknown_hook_is_refused_with_a_suggestion(lenient):
    mod = types.ModuleType("typo")

    @panfw.hookimpl
    def register_model(register):  # missing "s": pluggy would never call it
        register("never", lambda bands=4: nn.Identity())

    mod.register_model = register_model
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match=r"unknown hook 'register_model' \(did you mean \"register_models\"\?\)"):
        system.register(mod, name="typo")
    assert system.pm.get_plugin("typo") is None

    ok = types.ModuleType("future")

    @panfw.hookimpl(optionalhook=True)
    def register_something_new(register):
        pass

    ok.register_something_new = register_something_new
    system.register(ok, name="future")  # optional hooks of a newer panfw are allowed
    assert not system.info["future"].error


def test_hook_with_wrong_arguments_is_refused(lenient):
    mod = types.ModuleType("wrong_args")

    @panfw.hookimpl
    def register_models(reg):
        pass

    mod.register_models = register_models
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match="registration failed"):
        system.register(mod, name="wrong_args")
    assert "reg" in system.info["wrong_args"].error


def test_load_and_disable_lists(fake_entry_points, monkeypatch):
    good = _module_with_fusion("good_plugin", "good_block")
    other = _module_with_fusion("other_plugin", "other_block")
    fake_entry_points([_Fake("good", "good_plugin", lambda: good), _Fake("other", "other_plugin", lambda: other)])
    monkeypatch.setenv("PANFW_DISABLE_PLUGINS", "good")
    system = PluginSystem()
    system.load_entrypoints()
    assert set(system.info) - BUILTIN == {"other"} and "good_block" not in system.registries["fusions"]
    monkeypatch.delenv("PANFW_DISABLE_PLUGINS")
    monkeypatch.setenv("PANFW_LOAD_PLUGINS", "good")
    system = PluginSystem()
    system.load_entrypoints()
    assert set(system.info) - BUILTIN == {"good"} and "other_block" not in system.registries["fusions"]
    monkeypatch.setenv("PANFW_LOAD_PLUGINS", "")
    system = PluginSystem()
    system.load_entrypoints()
    # no plugin, but the core's own hook implementations (the runtimes) are always there
    assert set(system.info) == BUILTIN
    assert system.registries["runtimes"].get("torch").plugin == "panfw.inference.runtimes"
    assert system.info["panfw.inference.runtimes"].package == "panfw"


def test_register_and_unregister_at_run_time(plugin_registered):
    plugin_registered(_module_with_fusion("tmp_mod", "tmp_block"), "tmp")
    assert panfw.registry("fusions").get("tmp_block").plugin == "tmp"
    assert get_system().info["tmp"].registered == {"fusions": ["tmp_block"]}
    from panfw.plugins import unregister_plugin

    unregister_plugin("tmp")
    assert "tmp_block" not in panfw.registry("fusions") and "tmp" not in get_system().info


def test_commands_are_added_through_the_hook_and_failures_isolated(lenient):
    added = []

    class Cli:
        def add_command(self, cmd):
            added.append(cmd)

    good, bad = types.ModuleType("cmd_good"), types.ModuleType("cmd_bad")

    @panfw.hookimpl
    def register_commands(cli):
        cli.add_command("hello")

    @panfw.hookimpl(tryfirst=True)
    def register_commands_bad(cli):
        raise RuntimeError("no commands today")

    good.register_commands = register_commands
    bad.register_commands = register_commands_bad
    system = PluginSystem()
    system.register(good, name="cmd_good")
    system.register(bad, name="cmd_bad")
    with pytest.warns(PanfwWarning, match="register_commands failed: RuntimeError: no commands today"):
        system.add_commands(Cli())
    assert added == ["hello"]


def test_an_unhashable_object_can_be_a_plugin():
    plugin = types.SimpleNamespace()  # pluggy keeps plugins in sets; a namespace has no hash

    @panfw.hookimpl
    def register_refines(register):
        register("ns_refine", lambda dim: nn.Identity())

    plugin.register_refines = register_refines
    system = PluginSystem()
    system.register(plugin, name="namespace")
    assert system.registries["refines"].get("ns_refine").plugin == "namespace"
    system.unregister("namespace")
    assert "ns_refine" not in system.registries["refines"] and system.pm.get_plugin("namespace") is None
