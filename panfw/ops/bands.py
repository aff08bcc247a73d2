"""Band selection: the one parser of a ``bands`` option ("all", "bgrn", indices) for datasets and fuse."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from panfw.errors import UserError


def _accepted(available: int, one_based: bool) -> str:
    if one_based:
        return f"'all', 'bgrn' or distinct 1-based band numbers 1..{available} (as in GDAL), e.g. 2,3,5,7"
    return f"'all', 'bgrn' or distinct 0-based band indices 0..{available - 1}, e.g. [1, 2, 4, 6]"


def _bgrn(available: int, sensor: Any, where: str) -> list[int] | None:
    # 4-band data is B, G, R, NIR already (every 4-band sensor panfw knows stores them in that order)
    if available == 4:
        return None
    if sensor is None:
        raise UserError(f"{where}bands = 'bgrn' on {available}-band data needs the sensor (e.g. wv3, wv2) to "
                        "know which bands are B, G, R, NIR; name the sensor or give band numbers")
    if isinstance(sensor, str):
        from panfw.sensors import get_sensor

        sensor = get_sensor(sensor)
    if sensor.bgrn is None or sensor.n_bands != available:
        raise UserError(f"{where}bands = 'bgrn' is defined for 4-band data and 8-band WorldView data, not "
                        f"{available} bands of sensor {sensor.name!r}; give explicit band numbers")
    return list(sensor.bgrn)


def select_bands(spec: str | Sequence[int] | None, available: int, sensor: Any = None,
                 one_based: bool = False, where: str = "") -> list[int] | None:
    """0-based band indices picked by ``spec`` from ``available`` bands; None means every band in order.

    ``spec``: None, "" or "all" (every band); "bgrn" (the sensor's blue, green, red, NIR: every band of
    4-band data, [1, 2, 4, 6] of 8-band WorldView); or indices as a sequence or a comma-separated string,
    0-based, or 1-based as in GDAL when ``one_based`` (CLI options). ``sensor`` is a Sensor or its name;
    ``where`` prefixes error messages (e.g. "dataset 'wv3': ")."""
    if spec is None:
        return None
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in ("", "all"):
            return None
        if key == "bgrn":
            return _bgrn(available, sensor, where)
        parts = [p for p in key.replace(" ", "").split(",") if p]
    else:
        parts = list(spec)
    try:
        # bool is an int subclass; True/False as a band would be a typo, not a band
        if any(isinstance(p, bool) or (isinstance(p, float) and not p.is_integer()) for p in parts):
            raise ValueError
        picks = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise UserError(f"{where}bands = {spec!r} is not accepted; use {_accepted(available, one_based)}") from None
    lo = 1 if one_based else 0
    bad = [p for p in picks if not lo <= p < available + lo]
    if not picks or bad or len(set(picks)) != len(picks):
        why = (f"{bad} out of range" if bad else "repeated bands" if picks else "no band")
        raise UserError(f"{where}bands = {spec!r}: {why}; the data has {available} bands, use "
                        f"{_accepted(available, one_based)}")
    idx = [p - lo for p in picks]
    return None if idx == list(range(available)) else idx
