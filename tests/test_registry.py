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
