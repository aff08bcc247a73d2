"""Registries: options from signatures, did-you-mean, option checking."""

from __future__ import annotations

import pytest

from panfw.errors import RegistryError
from panfw.registries import Registry


def make_block(dim: int, pan_channels: int = 1, hidden: int = 8):
    """A block for tests.

    More text."""
    return (dim, pan_channels, hidden)


def test_entry_records_summary_options_and_plugin():
    reg = Registry("fusions")
    entry = reg.add("my_block", make_block, plugin="pkg")
    assert entry.summary == "A block for tests."
    assert entry.options["hidden"] == 8 and entry.options["pan_channels"] == 1
    assert entry.plugin == "pkg"
    assert reg.build("my_block", 4, hidden=3) == (4, 1, 3)


def test_unknown_name_lists_known_and_suggests():
    reg = Registry("fusions")
    reg.add("enhanced_conv", make_block)
    reg.add("conv1x1", make_block)
    with pytest.raises(RegistryError) as err:
        reg.get("enhanced_cov")
    msg = str(err.value)
    assert 'did you mean "enhanced_conv"' in msg and "known: conv1x1, enhanced_conv" in msg


def test_unknown_option_is_refused_with_suggestion():
    reg = Registry("fusions")
    reg.add("b", make_block)
    with pytest.raises(RegistryError, match=r"no option 'hiden' \(did you mean \"hidden\"\?\)"):
        reg.build("b", 4, hiden=2)


def test_summary_and_options_can_be_given_explicitly():
    reg = Registry("losses")
    entry = reg.add("x", lambda **kw: kw, summary="explicit", options={"a": 1})
    assert entry.summary == "explicit" and entry.options == {"a": 1}


def _model(bands: int = 4, sensor: str = "generic", width: int = 8):
    return {"bands": bands, "sensor": sensor, "width": width}


def _loose(**kwargs):
    return kwargs


def test_context_reaches_only_factories_that_declare_it():
    reg = Registry("models")
    reg.add("m", _model)
    reg.add("loose", _loose)
    reg.add("declared", _loose, options={"bands": 4})
    ctx = {"bands": 8, "sensor": "wv3", "ratio": 4, "bit_depth": 11}
    # ratio and bit_depth are not in m's signature, so they are not passed (no TypeError)
    assert reg.build("m", context=ctx) == {"bands": 8, "sensor": "wv3", "width": 8}
    assert reg.build("loose", context=ctx) == {}  # **kwargs is not a declaration
    assert reg.build("declared", context=ctx) == {"bands": 8}  # registered options are


def test_explicit_options_win_over_context_and_none_is_not_passed():
    reg = Registry("models")
    reg.add("m", _model)
    assert reg.build("m", context={"bands": 8, "sensor": None}, bands=3) == {"bands": 3, "sensor": "generic",
                                                                          "width": 8}
    assert reg.get("m").context_options({"bands": 8, "sensor": None, "ratio": 4}, {"bands": 3}) == {}


def test_context_is_not_checked_but_options_are():
    reg = Registry("models")
    reg.add("m", _model)
    with pytest.raises(RegistryError, match="model 'm' has no option 'ratio'; accepted: bands, sensor, width"):
        reg.build("m", context={"ratio": 4}, ratio=4)


def test_duplicate_is_a_dedicated_error():
    from panfw.errors import DuplicateNameError

    reg = Registry("metrics")
    reg.add("x", _loose, plugin="one")
    with pytest.raises(DuplicateNameError) as err:
        reg.add("x", _loose, plugin="two")
    assert (err.value.first, err.value.second) == ("one", "two")
    with pytest.raises(DuplicateNameError, match="'x' is registered twice: both times by plugin 'one'"):
        reg.add("x", _loose, plugin="one")
    assert reg.remove_plugin("one") == ["x"] and "x" not in reg


def test_metadata_is_kept_apart_from_summary_and_options():
    reg = Registry("models")
    entry = reg.add("m", _model, plugin="p", summary="s", reference_params=12, fixed_bands=None)
    assert entry.meta == {"reference_params": 12, "fixed_bands": None} and entry.summary == "s"
