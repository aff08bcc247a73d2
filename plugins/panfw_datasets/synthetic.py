"""``synthetic``: built-in pan-sharpening data that needs no download.

A seeded generator draws a scene on the true high-resolution grid (the PAN grid of an acquisition):

1. **land cover**: 5-12 regions (a Voronoi partition of domain-warped coordinates, so boundaries
   are irregular), each one class: dense vegetation, grass, crop (with row stripes), bare soil,
   sand, water or urban;
2. **materials**: every class has a reflectance spectrum over 400-1000 nm (vegetation's red edge,
   water's near-zero NIR, red roofs, ...), perturbed per scene in brightness and spectral tilt;
3. **texture**: a multi-octave noise field scales the brightness with a class-dependent amplitude;
4. **structures**: urban regions get a rotated street grid (asphalt) with one building per lot
   (roof material, size and position drawn per lot) and cast shadows; rural scenes get 0-3
   long, gently curving roads; edges are anti-aliased at the pixel scale;
5. **radiometry**: reflectance -> digital numbers with a per-scene illumination and a path-radiance
   (haze) offset that grows towards the blue.

The scene is rendered through a **sensor model**: each MS band integrates the spectrum over a
Gaussian spectral response (band centre and width), the PAN over its broad response; the true HR
bands are MTF-filtered with the sensor's Nyquist gains and decimated on the 4i+2 grid (the MS),
the PAN is blurred by its own MTF; both get Gaussian noise and are quantised to integer DN of the
sensor's bit depth. Sensors: ``wv3``, ``wv2`` (8 bands, 11-bit), ``gf2`` (4 bands, 10-bit), ``qb``
(4 bands, 11-bit), with the gains of ``panfw.sensors``.

Splits: ``train``/``valid``/``test_rr`` are reduced-resolution samples by Wald's protocol (the
acquired MS is ``gt``); ``test_fr`` is an original-resolution acquisition (ms, lms, pan) that also
keeps the **true HR image as gt**, so full-resolution quality can be measured with a reference.
Every item is generated from its own seed (seed, split, index, sensor): the data is deterministic,
generated lazily and kept in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from panfw.errors import UserError
from panfw.ops import imresize, interp23tap, mtf_filter, mtf_filter_pan
from panfw.ops.bands import select_bands
from panfw.sensors import Sensor, get_sensor
from panfw_datasets.common import as_tuple, check_split, select

LAMBDA = np.arange(400.0, 1001.0, 10.0)  # nm


@attrs.frozen
class SynthSensor:
    """A simulated sensor: the panfw sensor it borrows gains/bit depth from, plus spectral responses."""

    base: str
    centres: tuple[float, ...]  # nm
    fwhm: tuple[float, ...]  # nm
    pan_range: tuple[float, float]  # nm, 50 % points of the PAN response
    noise_ms: float = 0.0015  # std of the MS noise, fraction of the DN range
    noise_pan: float = 0.002

    @property
    def sensor(self) -> Sensor:
        return get_sensor(self.base)


SYNTH_SENSORS = {
    "wv3": SynthSensor("wv3", (427, 478, 546, 608, 659, 724, 831, 908), (40, 60, 70, 40, 60, 40, 120, 180),
                       (450, 800)),
    "wv2": SynthSensor("wv2", (427, 478, 546, 608, 659, 724, 833, 949), (50, 60, 70, 40, 60, 40, 120, 180),
                       (447, 808), noise_ms=0.002, noise_pan=0.0025),
    "gf2": SynthSensor("gf2", (485, 555, 660, 830), (70, 70, 60, 120), (450, 900), noise_ms=0.002),
    "qb": SynthSensor("qb", (485, 560, 660, 830), (70, 80, 60, 140), (450, 900)),
    # held-out sensor for panfw adapt: a visible-only PAN (no NIR) and other band shapes
    "jl1": SynthSensor("jl1", (490, 550, 650, 810), (50, 50, 40, 90), (500, 700), noise_ms=0.002),
}

SPLIT_CODE = {"train": 1, "valid": 2, "test_rr": 3, "test_fr": 4}
DEFAULT_N = {"train": 200, "valid": 16, "test_rr": 8, "test_fr": 8}
DEFAULT_SIZE = {"train": 64, "valid": 64, "test_rr": 128, "test_fr": 128}


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gauss(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2)


_l = LAMBDA
# reflectance spectra (0..1) on LAMBDA
MATERIALS = {
    "vegetation": 0.03 + 0.05 * _gauss(_l, 550, 30) + 0.42 * _sig((_l - 715) / 14) - 0.02 * _gauss(_l, 670, 20),
    "grass": 0.05 + 0.07 * _gauss(_l, 555, 35) + 0.30 * _sig((_l - 712) / 16),
    "crop": 0.07 + 0.10 * _sig((_l - 520) / 40) + 0.22 * _sig((_l - 710) / 20),
    "soil": 0.07 + 0.22 * (_l - 400) / 600 + 0.03 * _sig((_l - 560) / 30),
    "sand": 0.18 + 0.28 * _sig((_l - 500) / 90),
    "water": 0.02 + 0.05 * np.exp(-(_l - 430) / 90) * (_l < 720) + 0.005,
    "asphalt": 0.07 + 0.04 * (_l - 400) / 600,
    "concrete": 0.24 + 0.08 * (_l - 400) / 600,
    "roof_red": 0.07 + 0.28 * _sig((_l - 590) / 22),
    "roof_metal": 0.30 + 0.04 * _gauss(_l, 480, 60),
    "roof_dark": 0.10 + 0.02 * (_l - 400) / 600,
}
MAT_NAMES = tuple(MATERIALS)
MAT = {n: i for i, n in enumerate(MAT_NAMES)}
# land-cover class -> (base material, texture amplitude)
CLASSES = (("vegetation", 0.25), ("grass", 0.15), ("crop", 0.10), ("soil", 0.12), ("sand", 0.06),
           ("water", 0.03), ("concrete", 0.08))  # the last = urban ground
URBAN = len(CLASSES) - 1
ROOFS = ("roof_red", "roof_metal", "roof_dark", "concrete")


def _responses(ss: SynthSensor) -> np.ndarray:
    """(C+1, L) normalised spectral responses: the MS bands, then the PAN."""
    rows = [_gauss(LAMBDA, c, w / 2.3548) for c, w in zip(ss.centres, ss.fwhm)]
    lo, hi = ss.pan_range
    rows.append(_sig((LAMBDA - lo) / 8.0) * _sig((hi - LAMBDA) / 8.0) * (0.6 + 0.4 * (LAMBDA - 400) / 600))
    r = np.stack(rows)
    return r / r.sum(axis=1, keepdims=True)


def _noise(rng: np.random.Generator, n: int, h: int, w: int, cells: int) -> torch.Tensor:
    """n smooth noise fields (n, h, w): random cells x cells grids, bilinearly upsampled."""
    cells = max(1, min(cells, h, w))
    g = torch.from_numpy(rng.standard_normal((1, n, cells + 1, cells + 1), dtype=np.float32))
    sh, sw = h / cells, w / cells
    up = F.interpolate(g, size=(math.ceil((cells + 1) * sh), math.ceil((cells + 1) * sw)), mode="bilinear",
                       align_corners=False)
    oy, ox = int(0.5 * sh), int(0.5 * sw)
    return up[0, :, oy:oy + h, ox:ox + w]


def _fractal(rng: np.random.Generator, h: int, w: int, scale: float, octaves: int = 4) -> torch.Tensor:
    """Multi-octave noise (h, w), built coarse to fine (one upsampling per octave on small grids);
    the finest octave has cells of about 4 world pixels."""
    finest = max(2, int(max(h, w) * scale / 4))
    out = None
    for o in range(octaves):
        n = max(2, finest >> (octaves - 1 - o))
        g = torch.from_numpy(rng.standard_normal((1, 1, n, n), dtype=np.float32))
        if out is not None:
            g = g * (0.6 ** (octaves - 1 - o)) + F.interpolate(out, size=(n, n), mode="bilinear",
                                                               align_corners=False)
        out = g
    up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return up / 1.4


def _coverage(d: torch.Tensor, half: float, scale: float) -> torch.Tensor:
    """Anti-aliased coverage of a band of half-width ``half`` at distance ``d`` (world pixels), for
    render pixels of ``scale`` world pixels."""
    return ((half - d.abs()) / scale + 0.5).clamp(0.0, 1.0)


def render_scene(rng: np.random.Generator, ss: SynthSensor, size: int,
                 scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A true scene (C, size, size) and its PAN-band image (1, size, size), float32 digital numbers.

    World units are pixels of the true HR (PAN) grid; one rendered pixel spans ``scale`` of them."""
    h = w = size
    sensor = ss.sensor
    ext = size * scale  # world extent
    ax = (torch.arange(size, dtype=torch.float32) + 0.5) * scale
    yy, xx = ax[:, None].expand(h, w), ax[None, :].expand(h, w)
    urban_scene = rng.random() < 0.45

    # 1. land cover: Voronoi regions of domain-warped coordinates
    k = int(rng.integers(5, 13))
    warp = _noise(rng, 2, h, w, 4) * (0.1 * max(ext, 128.0))
    wx, wy = xx + warp[0], yy + warp[1]
    cy = rng.uniform(-0.1, 1.1, k) * ext
    cx = rng.uniform(-0.1, 1.1, k) * ext
    best = torch.full((h, w), float("inf"))
    region = torch.zeros(h, w, dtype=torch.long)
    for i in range(k):
        d2 = (wy - float(cy[i])) ** 2 + (wx - float(cx[i])) ** 2
        closer = d2 < best
        best = torch.where(closer, d2, best)
        region = torch.where(closer, i, region)
    probs = np.array([3, 3, 2, 2, 0.7, 1, 1.0]) if not urban_scene else np.array([1.5, 2, 0.5, 1, 0.3, 0.7, 5])
    cls = rng.choice(len(CLASSES), size=k, p=probs / probs.sum())
    cls_map = torch.from_numpy(cls)[region]
    mat = torch.tensor([MAT[c[0]] for c in CLASSES])[cls_map]
    tex_amp = torch.tensor([c[1] for c in CLASSES], dtype=torch.float32)[cls_map]

    # 4a. roads: long, gently curving, anti-aliased (asphalt coverage)
    cover = torch.zeros(h, w)
    n_roads = int(rng.integers(0, 4)) if not urban_scene else int(rng.integers(0, 2))
    if n_roads:
        bend = _noise(rng, n_roads, h, w, 3) * (0.04 * max(ext, 128.0))
    for r in range(n_roads):
        th = rng.uniform(0, math.pi)
        px, py = rng.uniform(0, ext), rng.uniform(0, ext)
        d = (xx - px) * math.sin(th) - (yy - py) * math.cos(th) + bend[r]
        cover = torch.maximum(cover, _coverage(d, rng.uniform(1.5, 4.0), scale))

    # 4b. urban regions: a rotated street grid, one building per lot, cast shadows
    roof = None
    shadow = None
    urban = cls_map == URBAN
    if urban.any():
        th = rng.uniform(0, math.pi / 2)
        lot = rng.uniform(24, 48)
        street = rng.uniform(1.5, 3.5)
        u = xx * math.cos(th) + yy * math.sin(th) + rng.uniform(0, lot)
        v = -xx * math.sin(th) + yy * math.cos(th) + rng.uniform(0, lot)
        iu, iv = torch.floor(u / lot), torch.floor(v / lot)
        fu, fv = u - iu * lot, v - iv * lot  # position inside the lot
        n_lots = 1024
        lot_id = (iu.long() * 7919 + iv.long() * 104729) % n_lots
        table = torch.from_numpy(rng.random((5, n_lots)).astype(np.float32))[:, lot_id]
        bw = (0.3 + 0.45 * table[0]) * lot
        bh = (0.3 + 0.45 * table[1]) * lot
        bu = fu - street - table[2] * (lot - 2 * street - bw).clamp(min=0)
        bv = fv - street - table[3] * (lot - 2 * street - bh).clamp(min=0)
        edge = torch.minimum(torch.minimum(fu, lot - fu), torch.minimum(fv, lot - fv))
        cover = torch.maximum(cover, _coverage(edge, street, scale) * urban)
        inside = (bu >= 0) & (bu < bw) & (bv >= 0) & (bv < bh) & (table[4] < 0.8) & urban
        roof_mats = torch.tensor([MAT[r] for r in ROOFS])
        roof = torch.where(inside, roof_mats[(table[4] * 5 * len(ROOFS)).long() % len(ROOFS)], -1)
        sy = max(1, round(rng.uniform(1, 4) / scale))
        sx = max(1, round(rng.uniform(1, 4) / scale))
        cast = F.pad(inside.float()[None, None], (sx, 0, sy, 0))[0, 0, :h, :w] > 0
        shadow = (cast & ~inside).float() * rng.uniform(0.5, 0.7)

    # 2. material spectra of this scene (brightness, tilt) projected on the sensor's responses
    lam = (LAMBDA - 700.0) / 300.0
    n_mat = len(MAT_NAMES)
    spectra = np.stack([MATERIALS[m] for m in MAT_NAMES])
    spectra = spectra * rng.uniform(0.8, 1.2, (n_mat, 1)) * (1 + rng.uniform(-0.1, 0.1, (n_mat, 1)) * lam)
    resp = _responses(ss)
    illum = rng.uniform(0.55, 0.95)
    haze = rng.uniform(0.005, 0.03) * (450.0 / LAMBDA) ** 3
    gain = sensor.max_dn * 0.95 * illum
    band_dn = torch.from_numpy((spectra @ resp.T * gain).astype(np.float32))  # (M, C+1)
    haze_dn = torch.from_numpy((haze @ resp.T * sensor.max_dn).astype(np.float32))  # (C+1,)

    # 3. brightness texture (class amplitude), crop rows; structures override the ground
    tex = 1.0 + tex_amp * _fractal(rng, h, w, scale)
    rows_th = rng.uniform(0, math.pi)
    period = rng.uniform(5, 10)
    crop = mat == MAT["crop"]
    if crop.any():
        stripes = torch.sin(2 * math.pi * (xx * math.cos(rows_th) + yy * math.sin(rows_th)) / period)
        tex = tex + (0.08 * crop) * stripes
    if roof is not None:
        top = roof >= 0
        mat = torch.where(top, roof, mat)
        tex = torch.where(top, 1.0 + 0.03 * (tex - 1.0), tex)
        cover = torch.where(top, 0.0, cover)
    bright = tex if shadow is None else tex * (1 - shadow)
    ground = band_dn.T[:, mat]  # (C+1, H, W)
    ground.mul_(bright * (1 - cover))
    asphalt = band_dn[MAT["asphalt"]]
    ground.addcmul_(asphalt[:, None, None], (bright * cover)[None]).add_(haze_dn[:, None, None])
    dn = ground.clamp_(0, sensor.max_dn)
    return dn[:-1], dn[-1:]


def _noisy(x: torch.Tensor, rng: np.random.Generator, sigma: float) -> torch.Tensor:
    return x + torch.from_numpy(rng.standard_normal(x.shape, dtype=np.float32)) * sigma


def get_synth_sensor(name: str) -> SynthSensor:
    """The simulated sensor of a name (wv3, wv2, gf2, qb; aliases as in panfw.sensors)."""
    try:
        key = get_sensor(name).name
    except UserError:
        key = str(name)
    if key not in SYNTH_SENSORS:
        raise UserError(f"synthetic: no simulated sensor {name!r}; accepted: {', '.join(SYNTH_SENSORS)}")
    return SYNTH_SENSORS[key]


def make_tile(sensor: str, split: str, index: int, size: int, seed: int = 0, pan_mode: str = "bicubic",
              same_scenes: bool = False) -> dict[str, torch.Tensor]:
    """One scene's sample in digital numbers (float32), PAN grid ``size``: RR for train/valid/test_rr,
    FR (with the true HR scene as gt) for test_fr.

    FR: the scene is rendered on the PAN grid, the MS acquired by the sensor's MTF and 4i+2
    decimation, the PAN by its own MTF; gt = the true scene. RR (Wald): an acquisition with its MS
    on a ``size`` grid and the PAN 4x finer, degraded by 4. The scene is rendered at 2x the MS grid
    (half the PAN resolution): the MS is acquired with the ratio-2 MTF kernels (the same filter at
    the MS grid) and the PAN degraded by imresize(1/2) ("bicubic") or the ratio-2 PAN MTF and
    decimation ("mtf"), which at the reduced grid are the filters Wald's ratio-4 degradation applies;
    only detail finer than half a PAN pixel, which the degradation removes anyway, is skipped."""
    ss = get_synth_sensor(sensor)
    s = ss.sensor
    code = list(SYNTH_SENSORS).index(s.name) + 1
    scene_key = [int(seed), SPLIT_CODE[split], int(index)] + ([] if same_scenes else [code])
    scene_rng = np.random.default_rng(scene_key)
    noise_rng = np.random.default_rng([int(seed), SPLIT_CODE[split], int(index), code, 99])
    r, top = s.ratio, float(s.max_dn)
    gains = s.gains(s.n_bands)
    # the sensor's MTF is the toolbox's genMTF filter (panfw.ops), as the Wald degradation uses
    if split == "test_fr":
        hr, pan_hr = render_scene(scene_rng, ss, size, 1.0)
        ms = mtf_filter(hr[None], gains, r, decimate=True)
        pan = mtf_filter_pan(pan_hr[None], s.mtf_pan, 1)  # the PAN's own MTF, at its Nyquist
        ms = _noisy(ms, noise_rng, ss.noise_ms * top).round().clamp(0, top)
        pan = _noisy(pan, noise_rng, ss.noise_pan * top).round().clamp(0, top)
        return {"gt": hr, "ms": ms[0], "lms": interp23tap(ms, r)[0], "pan": pan[0]}
    hr, pan_hr = render_scene(scene_rng, ss, 2 * size, r / 2)
    gt = mtf_filter(hr[None], gains, 2, decimate=True)
    gt = _noisy(gt, noise_rng, ss.noise_ms * top).round().clamp(0, top)
    pan2 = _noisy(pan_hr[None], noise_rng, ss.noise_pan * top / 2).clamp(0, top)
    if pan_mode == "mtf":
        pan_lr = mtf_filter_pan(pan2, s.mtf_pan, 2, decimate=True)
    else:
        pan_lr = imresize(pan2, scale=0.5)
    ms_lr = mtf_filter(gt, gains, r, decimate=True)
    return {"gt": gt[0], "ms": ms_lr[0], "lms": interp23tap(ms_lr, r)[0], "pan": pan_lr[0]}


class SyntheticDataset(Dataset):
    """Seeded synthetic samples of one simulated sensor and split, generated on first access and
    kept in memory (``cache``). Training/validation patches are cut from larger scenes (tiles of
    128 PAN pixels: 4 patches of 64), test items are whole scenes."""

    def __init__(self, split: str, sensor: str = "wv3", n: int | None = None, size: int | None = None,
                 seed: int = 0, bands: str | Sequence[int] = "all", pan_mode: str = "bicubic",
                 same_scenes: bool = False, cache: bool = True) -> None:
        check_split(split, "synthetic")
        ss = get_synth_sensor(sensor)
        spec = ss.sensor
        self.split, self.seed, self.pan_mode, self.same_scenes = split, int(seed), pan_mode, bool(same_scenes)
        self.n = int(DEFAULT_N[split] if n is None else n)
        self.size = int(DEFAULT_SIZE[split] if size is None else size)
        r = spec.ratio
        if self.n < 0:
            raise UserError(f"synthetic: n = {n} must be >= 0")
        if self.size < 2 * r or self.size % r:
            raise UserError(f"synthetic: size = {size} must be a multiple of the ratio {r} and at least {2 * r}")
        if pan_mode not in ("bicubic", "mtf"):
            raise UserError(f"synthetic: pan_mode = {pan_mode!r}; accepted: bicubic, mtf")
        self.per_side = max(1, 128 // self.size) if split in ("train", "valid") else 1
        self.sensor = spec.name
        self.name = f"synthetic/{spec.name}"
        self.ratio = r
        self.scale = float(spec.max_dn)
        self.band_indices = as_tuple(select_bands(bands, spec.n_bands, spec, where="dataset 'synthetic': "))
        self.bands = spec.n_bands if self.band_indices is None else len(self.band_indices)
        self.cache = bool(cache)
        self._tiles: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.n

    def _tile(self, j: int) -> dict[str, torch.Tensor]:
        tile = self._tiles.get(j)
        if tile is None:
            raw = make_tile(self.sensor, self.split, j, self.size * self.per_side, self.seed, self.pan_mode,
                            self.same_scenes)
            tile = {}
            for key in ("gt", "ms", "lms", "pan"):
                t = (raw[key] / self.scale).to(torch.float32)
                tile[key] = t if key == "pan" else select(t, self.band_indices).contiguous()
            if self.cache:
                self._tiles[j] = tile
        return tile

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"sample {index} out of range for {self.n} synthetic samples")
        p = self.per_side
        j, q = divmod(index, p * p)
        tile = self._tile(j)
        if p == 1:
            item = {k: v.clone() for k, v in tile.items()}
        else:
            qy, qx = divmod(q, p)
            s, m = self.size, self.size // self.ratio
            item = {k: v[:, qy * s:(qy + 1) * s, qx * s:(qx + 1) * s].clone()
                    for k, v in tile.items() if k != "ms"}
            item["ms"] = tile["ms"][:, qy * m:(qy + 1) * m, qx * m:(qx + 1) * m].clone()
        item["sensor"] = self.sensor
        return item

    def materialize(self) -> SyntheticDataset:
        """Generate (and cache) every item now."""
        p2 = self.per_side ** 2
        for j in range((self.n + p2 - 1) // p2):
            self._tile(j)
        return self

    def __repr__(self) -> str:
        return (f"SyntheticDataset({self.sensor}, {self.split}, n={self.n}, size={self.size}, seed={self.seed}, "
                f"{self.bands} bands)")


def synthetic(split: str, root: str | None = None, sensor: str = "wv3", n: int | None = None,
              size: int | None = None, seed: int = 0, bands: str | Sequence[int] = "all",
              pan_mode: str = "bicubic", same_scenes: bool = False, cache: bool = True) -> SyntheticDataset:
    """Built-in seeded synthetic scenes through a simulated sensor (wv3, wv2, gf2, qb); no download.

    Options: sensor; n samples (default 200 train, 16 valid, 8 test); size = PAN patch size (default
    64 train/valid, 128 test); seed; bands 'all' | 'bgrn' | [indices]; pan_mode of the Wald
    degradation ('bicubic' | 'mtf'); same_scenes (one scene per seed/index for every sensor); cache.
    ``root`` is ignored. test_fr items carry the true HR image as gt."""
    return SyntheticDataset(split, sensor=sensor, n=n, size=size, seed=seed, bands=bands, pan_mode=pan_mode,
                            same_scenes=same_scenes, cache=cache)
