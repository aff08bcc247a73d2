"""The one band-selection parser: 'all', 'bgrn' from the sensor, 0- and 1-based indices, clear errors."""

import pytest

from panfw.errors import UserError
from panfw.ops import select_bands
from panfw.sensors import get_sensor


def test_all_and_none_mean_every_band():
    for spec in (None, "", "all", "ALL", [0, 1, 2, 3], "0,1,2,3"):
        assert select_bands(spec, 4) is None, spec
    assert select_bands("1,2,3,4", 4, one_based=True) is None


def test_bgrn_from_the_sensor():
    assert select_bands("bgrn", 8, get_sensor("wv3")) == [1, 2, 4, 6]
    assert select_bands("BGRN", 8, "wv2") == [1, 2, 4, 6]
    assert select_bands("bgrn", 8, "wv3", one_based=True) == [1, 2, 4, 6]  # the result is always 0-based
    assert select_bands("bgrn", 4, "gf2") is None and select_bands("bgrn", 4) is None
    with pytest.raises(UserError, match="needs the sensor"):
        select_bands("bgrn", 8)
    with pytest.raises(UserError, match=r"not 8 bands of sensor 'qb'"):
        select_bands("bgrn", 8, "qb")


def test_indices_zero_and_one_based():
    assert select_bands([0, 7], 8) == [0, 7]
    assert select_bands((6, 4, 2, 1), 8) == [6, 4, 2, 1]
    assert select_bands("2, 3,5,7", 8, one_based=True) == [1, 2, 4, 6]
    assert select_bands([2, 3, 5, 7], 8, one_based=True) == [1, 2, 4, 6]


@pytest.mark.parametrize(("spec", "one_based", "message"), [
    ([8], False, r"bands = \[8\]: \[8\] out of range; the data has 8 bands, use .*0-based band indices 0\.\.7"),
    ("1,2,4,9", True, r"\[9\] out of range.*1-based band numbers 1\.\.8 \(as in GDAL\)"),
    ([0], True, r"\[0\] out of range.*1\.\.8"),
    ([1, 1], False, "repeated bands"),
    ([], False, "no band"),
    ("rgb", False, r"bands = 'rgb' is not accepted; use 'all', 'bgrn' or"),
    ([1.5], False, "is not accepted"),
    ([True], False, "is not accepted"),
])
def test_errors_name_the_value_and_what_is_accepted(spec, one_based, message):
    with pytest.raises(UserError, match=message):
        select_bands(spec, 8, "wv3", one_based=one_based, where="dataset 'x': ")
    with pytest.raises(UserError, match="^dataset 'x': bands = "):
        select_bands(spec, 8, "wv3", one_based=one_based, where="dataset 'x': ")
