"""Sensor specifications: bands, bit depth, PAN/MS ratio and MTF Nyquist gains (Vivone's toolbox)."""

from __future__ import annotations

import attrs

from panfw._suggest import did_you_mean, known_list
from panfw.errors import UserError

_WV_BANDS = ("coastal", "blue", "green", "yellow", "red", "red_edge", "nir1", "nir2")
_BGRN = ("blue", "green", "red", "nir")


@attrs.frozen
class Sensor:
    """One sensor: what the data, the metrics and the Wald protocol need to know about it."""

    name: str
    title: str
    bands: tuple[str, ...]
    bit_depth: int
    ratio: int
    mtf_ms: tuple[float, ...]
    mtf_pan: float
    bgrn: tuple[int, ...] | None = None  # indices of blue, green, red, NIR for 8-band sensors

    @property
    def max_dn(self) -> int:
        """Largest digital number: 2**bits - 1 (2047 for 11-bit, 1023 for 10-bit)."""
        return 2 ** self.bit_depth - 1

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    def gains(self, n_bands: int | None = None, band_indices: tuple[int, ...] | None = None) -> tuple[float, ...]:
        """MS MTF gains for a band selection; like the toolbox, n bands of an 8-band sensor take the
        first n gains unless explicit indices are given."""
        if band_indices is not None:
            return tuple(self.mtf_ms[i] for i in band_indices)
        n = n_bands or self.n_bands
        if n <= len(self.mtf_ms):
            return self.mtf_ms[:n]
        return (self.mtf_ms[0],) * n


SENSORS: dict[str, Sensor] = {
    s.name: s
    for s in [
        Sensor("wv3", "WorldView-3", _WV_BANDS, 11, 4,
               (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315), 0.14, bgrn=(1, 2, 4, 6)),
        Sensor("wv2", "WorldView-2", _WV_BANDS, 11, 4, (0.35,) * 7 + (0.27,), 0.11, bgrn=(1, 2, 4, 6)),
        Sensor("qb", "QuickBird", _BGRN, 11, 4, (0.34, 0.32, 0.30, 0.22), 0.15),
        Sensor("ikonos", "IKONOS", _BGRN, 11, 4, (0.26, 0.28, 0.29, 0.28), 0.17),
        Sensor("geoeye1", "GeoEye-1", _BGRN, 11, 4, (0.23,) * 4, 0.16),
        # GF2 is not in the toolbox's tables: it falls back to the generic gains (0.30, PAN 0.15)
        Sensor("gf2", "GaoFen-2", _BGRN, 10, 4, (0.30,) * 4, 0.15),
        Sensor("generic", "generic sensor (toolbox 'none')", _BGRN, 11, 4, (0.30,) * 4, 0.15),
        # held-out simulated sensor (panfw adapt's benchmark): blurrier MS, sharper PAN, 12-bit; its
        # gains are chosen unlike WV2/WV3/GF2, not taken from a Jilin-1 specification
        Sensor("jl1", "Jilin-1-like (simulated)", _BGRN, 12, 4, (0.22, 0.22, 0.20, 0.18), 0.24),
    ]
}
_ALIASES = {"worldview3": "wv3", "worldview2": "wv2", "quickbird": "qb", "geoeye": "geoeye1",
            "ge1": "geoeye1", "none": "generic", "jilin1": "jl1", "gaofen2": "gf2", "wv4": "geoeye1"}


def get_sensor(name: str | Sensor) -> Sensor:
    """A sensor by name (case-insensitive; 'none' is the toolbox's generic sensor)."""
    if isinstance(name, Sensor):
        return name
    key = str(name).lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in SENSORS:
        raise UserError(f"unknown sensor {name!r}{did_you_mean(str(name).lower(), SENSORS)}; "
                        f"known: {known_list(SENSORS)}")
    return SENSORS[key]
