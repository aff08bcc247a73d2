"""Plugin manager: entry-point loading, isolation of broken plugins, strict mode, duplicates."""

from __future__ import annotations

import importlib.metadata
import sys
import types

import pytest
from torch import nn

import panfw
from panfw.errors import PluginError, RegistryError
from panfw.plugins import PanfwWarning, PluginSystem, get_system


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
    def install(eps):
        real = importlib.metadata.entry_points

        def fake(**kw):
            if kw.get("group") == "panfw":
                return list(real(**kw)) + eps
            return real(**kw)

        monkeypatch.setattr(importlib.metadata, "entry_points", fake)

    return install


def test_bundled_plugins_come_from_entry_points():
    system = get_system()
    eps = {ep.name for ep in importlib.metadata.entry_points(group="panfw")}
    assert {"pantiny", "losses", "metrics", "datasets"} <= eps
    for name in ("pantiny", "losses", "metrics", "datasets"):
        assert system.info[name].package == "panfw"


def test_broken_plugin_is_reported_and_the_rest_works(fake_entry_points, monkeypatch):
    monkeypatch.delenv("PANFW_STRICT_PLUGINS", raising=False)

    def boom():
        raise ImportError("No module named 'missing_dependency'")

    good = _module_with_fusion("good_plugin", "good_block")
    fake_entry_points([_Fake("broken", "broken_plugin", boom), _Fake("good", "good_plugin", lambda: good)])
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match="broken"):
        system.load_entrypoints()
    assert "missing_dependency" in system.info["broken"].error
    failed = [f.name for f in system.failures()]
    assert "broken" in failed and "good" not in failed
    assert "good_block" in system.registries["fusions"]


def test_plugin_whose_register_hook_raises_is_isolated(monkeypatch):
    monkeypatch.delenv("PANFW_STRICT_PLUGINS", raising=False)
    mod = types.ModuleType("half_broken")

    @panfw.hookimpl
    def register_losses(register):
        register("fine_loss", nn.L1Loss)
        raise RuntimeError("bad registration")

    mod.register_losses = register_losses
    system = PluginSystem()
    with pytest.warns(PanfwWarning, match="bad registration"):
        system.register(mod, name="half_broken")
    assert "fine_loss" not in system.registries["losses"]  # nothing half-registered
    assert "register_losses failed" in system.info["half_broken"].error


def test_strict_mode_makes_a_broken_plugin_fatal(fake_entry_points, monkeypatch):
    monkeypatch.setenv("PANFW_STRICT_PLUGINS", "1")

    def boom():
        raise ImportError("nope")

    fake_entry_points([_Fake("broken", "broken_plugin", boom)])
    with pytest.raises(PluginError, match="broken.*nope"):
        PluginSystem().load_entrypoints()


def test_duplicate_names_name_both_plugins():
    system = PluginSystem()
    system.register(_module_with_fusion("first_pkg", "same_block"), name="first")
    with pytest.raises(RegistryError, match="'same_block' is registered twice: by plugin 'first' and by plugin 'second'"):
        system.register(_module_with_fusion("second_pkg", "same_block"), name="second")


def test_load_and_disable_lists(fake_entry_points, monkeypatch):
    good = _module_with_fusion("good_plugin", "good_block")
    fake_entry_points([_Fake("good", "good_plugin", lambda: good)])
    monkeypatch.setenv("PANFW_DISABLE_PLUGINS", "good")
    system = PluginSystem()
    system.load_entrypoints()
    assert "good" not in system.info
    monkeypatch.delenv("PANFW_DISABLE_PLUGINS")
    monkeypatch.setenv("PANFW_LOAD_PLUGINS", "good")
    system = PluginSystem()
    system.load_entrypoints()
    assert set(system.info) == {"good"}


def test_register_and_unregister_at_run_time(plugin_registered):
    plugin_registered(_module_with_fusion("tmp_mod", "tmp_block"), "tmp")
    assert "tmp_block" in panfw.registry("fusions")
    assert panfw.registry("fusions").get("tmp_block").plugin == "tmp"
    from panfw.plugins import unregister_plugin

    unregister_plugin("tmp")
    assert "tmp_block" not in panfw.registry("fusions")


def test_hookimpl_is_the_public_marker():
    assert panfw.hookimpl.project_name == "panfw"
    assert "panfw.hookspecs" in sys.modules
