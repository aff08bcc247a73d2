"""Real scenes: classical methods fused tile by tile give the whole-scene result (statistics from the
scene via ``fit_scene``, tiles read with ``scene_halo`` of context); the sensor and the ratio reach
them; a method that cannot run at a ratio says so; ``floor_ms`` avoids the ratio methods' blow-ups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import panfw
from panfw.errors import DataError, UserError
from panfw.ops import interp23tap, pad2d, tile_grid

CLASSIC = [e.name for e in panfw.registry("models") if e.meta.get("family") == "classic"]
EXACT = [n for n in CLASSIC if panfw.create_model(n, bands=4).tile_exact is True]


def _smooth(c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, c, h // 8, w // 8, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return x + 0.05 * torch.rand(1, c, h, w, generator=g, dtype=torch.float64)


def dn_scene(ratio: int, bands: int = 4, h: int = 96, w: int = 80) -> tuple[torch.Tensor, ...]:
    """An 11-bit-like scene in DN: lms upsampled as the scene loop does (MS mirrored, interp23tap)."""
    pan = 200 + 1500 * _smooth(1, h, w, 1)
    ms = 100 + 1200 * _smooth(bands, h // ratio, w // ratio, 2)
    m = 12
    lms = interp23tap(pad2d(ms, m, m, "symmetric"), ratio)[..., m * ratio:m * ratio + h, m * ratio:m * ratio + w]
    return lms, pan, ms


def tiled(model, lms, pan, ms, ratio: int, tile: int = 32, overlap: int = 8) -> torch.Tensor:
    """The scene loop's geometry: each tile read with the model's halo (clipped to the scene), cropped."""
    h, w = pan.shape[-2:]
    halo = model.scene_halo
    out = torch.full_like(lms, float("nan"))
    for y, x, th, tw in tile_grid(h, w, tile, overlap, ratio):
        y0, x0 = max(0, y - halo), max(0, x - halo)
        y1, x1 = min(h, y + th + halo), min(w, x + tw + halo)
        o = model(lms[..., y0:y1, x0:x1], pan[..., y0:y1, x0:x1],
                  ms[..., y0 // ratio:y1 // ratio, x0 // ratio:x1 // ratio])
        out[..., y:y + th, x:x + tw] = o[..., y - y0:y - y0 + th, x - x0:x - x0 + tw]
    return out


@pytest.mark.parametrize("ratio", [2, 4])
@pytest.mark.parametrize("name", EXACT)
def test_tiles_with_scene_statistics_equal_the_whole_scene(name, ratio):
    lms, pan, ms = dn_scene(ratio)
    model = panfw.create_model(name, bands=4, ratio=ratio, sensor="qb")
    assert model.scene_halo % ratio == 0
    model.fit_scene(lms, pan, ms)
    whole = model(lms, pan, ms)
    # 1e-6 DN; relative 1e-10 where an HPM denominator near zero makes values of 1e6 DN
    torch.testing.assert_close(tiled(model, lms, pan, ms, ratio), whole, atol=1e-6, rtol=1e-10)


@pytest.mark.parametrize("name", ["gsa", "mtf_glp_hpm_r", "bdsd", "c_gsa"])
def test_tiles_with_their_own_statistics_differ(name):
    """What tiling did before fit_scene: each tile its own coefficients (the test above can fail)."""
    lms, pan, ms = dn_scene(4, h=192, w=192)  # larger than a tile with its halo
    model = panfw.create_model(name, bands=4, ratio=4, sensor="qb")
    whole = model(lms, pan, ms)
    assert (tiled(model, lms, pan, ms, 4) - whole).abs().max() > 1.0


def test_scene_statistics_are_the_whole_images_and_cleared():
    lms, pan, ms = dn_scene(4)
    model = panfw.create_model("gsa", bands=4)
    stats = model.fit_scene(lms, pan, ms)
    assert {"w", "g", "mean"} <= set(stats)
    part = model(lms[..., :32, :32], pan[..., :32, :32], ms[..., :8, :8])
    model.clear_scene()
    own = model(lms[..., :32, :32], pan[..., :32, :32], ms[..., :8, :8])
    assert (part - own).abs().max() > 1.0  # the window alone gets other coefficients
    with pytest.raises(DataError, match="batch 1"):
        model.fit_scene(lms.expand(2, -1, -1, -1), pan.expand(2, -1, -1, -1), ms.expand(2, -1, -1, -1))


def test_whole_image_calls_stay_toolbox_exact_inside_the_scene_borders():
    """A scene mirrors at its borders where the toolbox wraps; away from the border, the same image."""
    lms, pan, ms = dn_scene(4)
    model = panfw.create_model("mtf_glp", bands=4, sensor="qb")
    plain = model(lms, pan, ms)
    model.fit_scene(lms, pan, ms)
    scene = model(lms, pan, ms)
    b = model.scene_halo
    torch.testing.assert_close(scene[..., b:-b, b:-b], plain[..., b:-b, b:-b], atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", ["sr_d", "tv"])
def test_methods_that_cannot_be_tiled_say_why(name):
    reason = panfw.create_model(name, bands=4).tile_exact
    assert isinstance(reason, str) and len(reason) > 20


def test_bdsd_blocks_refused_in_a_scene():
    lms, pan, ms = dn_scene(4, h=64, w=64)
    model = panfw.create_model("bdsd", bands=4, block=32)
    with pytest.raises(DataError, match="block=32"):
        model.fit_scene(lms, pan, ms)
    assert model(lms, pan, ms).shape == lms.shape  # a whole-image call keeps the blocks


# ---- sensor and ratio reach the methods; ratios a method cannot run at ---------------------------

@pytest.mark.parametrize("name", [n for n in CLASSIC if n not in ("tv",)])
def test_context_sensor_and_ratio_reach_every_method(name):
    model = panfw.create("models", name, context={"bands": 4, "sensor": "qb", "ratio": 2})
    assert model.ratio == 2 and model.sensor.name == "qb"


@pytest.mark.parametrize("name", ["tv", "sr_d"])
def test_bit_depth_reaches_the_methods_with_dn_constants(name):
    """TV's lambda and SR-D's threshold are in DN: [0, 1] inputs of 12-bit data scale by 4095, not the
    sensor's 2047 (fuse passes --bits as the bit_depth context)."""
    m = panfw.create("models", name, context={"bands": 4, "sensor": "qb", "ratio": 4, "bit_depth": 12})
    assert m.input_scale == 4095.0
    assert panfw.create("models", name, context={"bands": 4, "sensor": "qb"}).input_scale is None


def test_glp_family_refuses_a_ratio_it_cannot_run_at():
    for name in ("mtf_glp", "mtf_glp_hpm", "mtf_glp_fs", "c_mtf_glp_cbd"):
        with pytest.raises(DataError, match="power-of-two"):
            panfw.create_model(name, bands=4, ratio=3)
    for name in ("gsa", "bdsd", "pracs", "awlp", "brovey"):
        assert panfw.create_model(name, bands=4, ratio=3).ratio == 3
    with pytest.raises(DataError, match=">= 2"):
        panfw.create_model("gsa", bands=4, ratio=1)


def test_ratio_two_filters_differ_from_ratio_four():
    """mtf_glp_hpm built for the data's ratio 2 is not the ratio-4 method (what fuse used to run)."""
    lms, pan, ms = dn_scene(2)
    r2 = panfw.create_model("mtf_glp_hpm", bands=4, ratio=2)(lms, pan, ms)
    r4 = panfw.create_model("mtf_glp_hpm", bands=4, ratio=4)(lms, pan, ms)
    assert (r2 - r4).abs().max() > 1.0


# ---- floor_ms: the ratio methods' blow-ups -------------------------------------------------------

RATIO_METHODS = ["brovey", "bt_h", "awlp", "mf", "sfim", "mtf_glp_hpm", "mtf_glp_hpm_h", "mtf_glp_hpm_r"]


@pytest.mark.parametrize("name", RATIO_METHODS)
def test_floor_ms_is_off_by_default_and_floors_lms(name):
    lms, pan, ms = dn_scene(4)
    dark = lms - 0.5 * lms.mean()  # interp23tap undershoots below 0 in dark areas
    default = panfw.create_model(name, bands=4)
    floored = panfw.create_model(name, bands=4, floor_ms=True)
    assert not default.floor_ms
    torch.testing.assert_close(floored(dark, pan, ms), default(dark.clamp_min(0), pan, ms.clamp_min(0)))
    assert not torch.equal(default(dark, pan, ms), floored(dark, pan, ms))


def test_floor_ms_avoids_a_brovey_blow_up():
    lms, pan, ms = dn_scene(4)
    dark = lms.clone()
    dark[..., 40:44, 40:44] = 0.0
    dark[..., 41, 41] = torch.tensor([-1e-3, 1e-3, -1e-3, 1e-3 + 1e-9], dtype=dark.dtype)  # intensity ~0
    blown = panfw.create_model("brovey", bands=4)(dark, pan, ms)
    safe = panfw.create_model("brovey", bands=4, floor_ms=True)(dark, pan, ms)
    assert blown.abs().max() > 1e5 and safe.abs().max() < 1e4


# ---- panfw fuse on real-shaped GeoTIFF pairs -----------------------------------------------------

rasterio = pytest.importorskip("rasterio")


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read()


def whole_image(name: str, scene: dict, sensor: str, **options) -> np.ndarray:
    """The method built for ``sensor`` and the pair's ratio, on the whole scene at once (statistics
    and filters over all of it), with the scene loop's upsampling; DN as fuse writes them. A
    half-pixel pair is first aligned as the docs say: its first MS pixel and first ratio - 1 PAN
    pixels dropped (MS pixel i then on PAN pixel r·i + r//2), PAN beyond the MS cropped."""
    r, top = scene["ratio"], 2 ** scene["bits"] - 1
    q, k = (1, r - 1) if scene["half"] else (0, 0)
    ms_a, pan_a = scene["ms_array"][:, q:, q:], scene["pan_array"][:, k:, k:]
    h, w = min(ms_a.shape[1], pan_a.shape[1] // r), min(ms_a.shape[2], pan_a.shape[2] // r)
    ms = torch.from_numpy(ms_a[:, :h, :w].astype("float32") / top)[None]
    pan = torch.from_numpy(pan_a[:, :h * r, :w * r].astype("float32") / top)[None]
    m = 12
    lms = interp23tap(pad2d(ms, m, m, "symmetric"), r)[..., m * r:-m * r, m * r:-m * r]
    context = {"bands": ms.shape[1], "sensor": sensor, "ratio": r, "bit_depth": scene["bits"]}
    model = panfw.create("models", name, context=context, **options)
    with torch.no_grad():
        model.fit_scene(lms.contiguous(), pan.contiguous(), ms.contiguous())
        out = model(lms.contiguous(), pan.contiguous(), ms.contiguous()).float()
    return np.rint(np.clip(out[0].numpy() * top, 0, top)).astype(scene["ms_array"].dtype)


def _fuse(scene, name, out, tile, sensor, **kw):
    import warnings

    from panfw.inference.scene import fuse_scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fuse_scene(scene["pan"], scene["ms"], name, out, sensor=sensor, bits=scene["bits"], tile=tile,
                          overlap=8, progress=False, **kw)


# real-shaped pairs: odd sizes, 11/12/16-bit DN, Landsat's half-pixel PAN grid, extra PAN rows/columns
SCENES = {"r2_12bit": dict(ratio=2, ms_size=(61, 53), bits=12),
          "r4_11bit": dict(ratio=4, ms_size=(41, 37), bits=11),
          "r2_16bit_half_pixel_extra_row": dict(ratio=2, ms_size=(59, 51), bits=16, half_pixel=True, extra=(1, 0)),
          "r4_11bit_half_pixel_extra_col": dict(ratio=4, ms_size=(39, 43), bits=11, half_pixel=True, extra=(0, 1))}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from helpers import write_scene_pair

    base = tmp_path_factory.mktemp("scenes")
    return {k: {**write_scene_pair(base / k, **kw), "half": kw.get("half_pixel", False)} for k, kw in SCENES.items()}


@pytest.mark.parametrize("key", list(SCENES))
@pytest.mark.parametrize("name", [n for n in CLASSIC if n != "lms"])
def test_fuse_gives_the_whole_image_result_at_the_sensor_and_ratio(scenes, tmp_path, name, key):
    scene = scenes[key]
    exact = panfw.create_model(name, bands=4).tile_exact is True
    rep = _fuse(scene, name, tmp_path / "t.tif", 48 if exact else 4096, "qb")
    assert rep.ratio == scene["ratio"]
    assert any("Landsat" in n for n in rep.notes) == scene["half"]
    got, want = _read(tmp_path / "t.tif").astype(int), whole_image(name, scene, "qb").astype(int)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    # float32 tiles: a value on a rounding boundary may round the other way; nothing more
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())


def test_fuse_honours_the_sensor(scenes, tmp_path):
    """--sensor reaches the method: the MTF gains of qb and wv2 give different images."""
    a = _fuse(scenes["r4_11bit"], "mtf_glp", tmp_path / "a.tif", 64, "qb")
    b = _fuse(scenes["r4_11bit"], "mtf_glp", tmp_path / "b.tif", 64, "wv2")
    assert a.ratio == b.ratio == 4
    assert not np.array_equal(_read(a.out), _read(b.out))


def test_fuse_options_reach_the_model(scenes, tmp_path):
    from click.testing import CliRunner

    from panfw.cli import cli

    s = scenes["r4_11bit"]
    args = ["fuse", "--pan", str(s["pan"]), "--ms", str(s["ms"]), "--model", "brovey", "--bits", "11", "--quiet"]
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "f.tif"), "-O", "floor_ms=true"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "g.tif"), "-O", "no_such=1"])
    assert res.exit_code == 2 and "no_such" in res.output and "floor_ms" in res.output


def test_nodata_border_is_left_out_of_the_statistics(tmp_path):
    """A nodata collar: the scene statistics come from the valid part, the collar stays nodata."""
    from helpers import write_scene_pair

    scene = write_scene_pair(tmp_path / "nd", ratio=4, ms_size=(30, 26), bits=11, nodata_border=2, seed=3)
    rep = _fuse(scene, "gsa", tmp_path / "o.tif", 48, "qb")
    assert any("nodata border" in n for n in rep.notes)
    got = _read(tmp_path / "o.tif").astype(int)
    b = 2  # MS pixels of collar: top, bottom and left
    # the statistics of the valid part, applied to the whole scene (collar included), as fuse does
    r, top = 4, 2047
    ms = torch.from_numpy(scene["ms_array"].astype("float32") / top)[None]
    pan = torch.from_numpy(scene["pan_array"].astype("float32") / top)[None]
    lms = interp23tap(pad2d(ms, 12, 12, "symmetric"), r)[..., 48:-48, 48:-48]
    ims = ms[..., b:-b, b:]
    full_lms_inner = lms[..., 4 * b:-4 * b, 4 * b:]
    model = panfw.create("models", "gsa", context={"bands": 4, "sensor": "qb", "ratio": 4})
    with torch.no_grad():
        # the scene loop upsamples the valid window from the scene's MS (collar as neighbours)
        model.fit_scene(full_lms_inner.contiguous(), pan[..., 4 * b:-4 * b, 4 * b:].contiguous(),
                        ims.contiguous())
        out = model(lms, pan, ms).float()
    want = np.rint(np.clip(out[0].numpy() * top, 0, top)).astype(int)
    valid = got[0] != 0
    assert not valid[:4 * b].any() and not valid[:, :4 * b].any() and valid[4 * b:-4 * b, 4 * b:].all()
    diff = np.abs(got - want)[:, valid]
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_preview_png_is_an_rgb_quicklook(scenes, tmp_path):
    from matplotlib import image as mpimg

    s = scenes["r4_11bit"]
    rep = _fuse(s, "gsa", tmp_path / "o.tif", 64, "qb", preview=tmp_path / "q.png")
    img = mpimg.imread(tmp_path / "q.png")
    assert img.shape[:2] == (s["pan_array"].shape[1], s["pan_array"].shape[2]) and img.shape[2] in (3, 4)
    assert img[..., :3].min() == 0.0 and img[..., :3].max() == 1.0  # 2-98 percentile stretch saturates
    assert any("quicklook" in n for n in rep.notes)
    # R, G, B are bands 3, 2, 1 of a 4-band B, G, R, NIR image
    with rasterio.open(tmp_path / "o.tif") as ds:
        red = ds.read(3).astype(float)
    corr = np.corrcoef(red.ravel(), img[..., 0].ravel())[0, 1]
    assert corr > 0.9


# ---- metrics: the ratio from the data, one options set for all, the bit depth ----------------------

def _triple(ratio: int, size: int = 64, seed: int = 0):
    from helpers import smooth_image

    from panfw.ops import decimate, mtf_filter

    gt = smooth_image(1, 4, size, size, seed, cell=8)
    ms = decimate(mtf_filter(gt, (0.3,) * 4, ratio), ratio)
    lms = interp23tap(ms, ratio)
    fused = gt + 0.01 * torch.randn(gt.shape, generator=torch.Generator().manual_seed(seed), dtype=gt.dtype)
    return {"fused": fused, "gt": gt, "ms": ms, "lms": lms, "pan": gt.mean(1, keepdim=True)}


@pytest.mark.parametrize("name", ["hqnr", "d_s", "qnr", "d_lambda_k"])
def test_fr_metrics_read_the_ratio_from_the_data(name):
    t = _triple(2)
    auto = panfw.create_metric(name)(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
    stated = panfw.create_metric(name, ratio=2)(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
    torch.testing.assert_close(auto, stated)
    with pytest.raises(UserError, match="contradicts"):
        panfw.create_metric(name, ratio=4)(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
    with pytest.raises(UserError, match="contradicts"):
        panfw.create_metric(name)(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"], ratio=4)


def test_hqnr_at_ratio_two_is_not_the_ratio_four_value():
    """What the qb sensor's ratio 4 gave on ratio-2 data before: a different (wrong) HQNR."""
    from panfw_metrics import functional as Fm

    t = _triple(2)
    auto = panfw.create_metric("hqnr")(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
    k = 2047.0
    gains = panfw.sensors.get_sensor("qb").gains(4)
    d_s4 = Fm.d_s(t["fused"] * k, t["lms"] * k, t["pan"] * k, 4, 32, 1)
    dk4 = Fm.d_lambda_k(t["fused"] * k, t["lms"] * k, gains, 4, 32)
    assert abs(float(auto) - float((1 - dk4) * (1 - d_s4))) > 1e-4


def test_evaluator_gives_ergas_the_datas_ratio():
    from panfw.evaluation import Evaluator

    t = _triple(2)
    ev = Evaluator(["ergas"], sensor="qb")
    v2 = ev.update(t["fused"], t)["ergas"]
    v4 = panfw.create_metric("ergas", ratio=4)(t["fused"], t["gt"], sensor="qb")
    torch.testing.assert_close(v2, 2 * v4.cpu().double())  # 100/ratio


def test_one_options_set_serves_every_metric():
    t = _triple(4, size=96)
    for entry in panfw.registry("metrics"):
        m = panfw.create_metric(entry.name, ratio=4, bit_depth=11)
        plain = panfw.create_metric(entry.name)
        if entry.meta["kind"] == "reference":
            a, b = m(t["fused"], t["gt"], sensor="qb"), plain(t["fused"], t["gt"], sensor="qb")
        else:
            a = m(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
            b = plain(t["fused"], t["ms"], t["pan"], sensor="qb", lms=t["lms"])
        torch.testing.assert_close(a, b)  # qb: 11 bits and ratio 4 already


def test_bit_depth_sets_the_dn_scale():
    t = _triple(4)
    q16 = panfw.create_metric("q2n", bit_depth=16)(t["fused"], t["gt"], sensor="qb")
    scaled = panfw.create_metric("q2n", scale=65535)(t["fused"], t["gt"], sensor="qb")
    q11 = panfw.create_metric("q2n")(t["fused"], t["gt"], sensor="qb")
    torch.testing.assert_close(q16, scaled)
    assert not torch.equal(q16, q11)  # Q2n casts to uint16: the DN scale matters
    no_sensor = panfw.create_metric("q2n", bit_depth=16)(t["fused"], t["gt"])
    torch.testing.assert_close(no_sensor, q16)


def test_a_test_set_on_its_own_dn_scale_gives_the_metrics_its_bit_depth():
    """16-bit data of an 11-bit sensor (a TIFF folder with scale=65535) is scored on its DN scale."""
    from types import SimpleNamespace

    from panfw.engine.evaluate import _evaluator

    ev = _evaluator(["q2n", "hqnr", "psnr"], "qb", SimpleNamespace(scale=65535.0))
    assert {k: m.bit_depth for k, m in ev.metrics.items()} == {"q2n": 16, "hqnr": 16, "psnr": None}
    ev = _evaluator(["q2n"], "qb", SimpleNamespace(scale=2047.0))
    assert ev.metrics["q2n"].bit_depth is None


def test_half_pixel_pair_output_is_georeferenced_on_the_cropped_pan(scenes, tmp_path):
    s = scenes["r2_16bit_half_pixel_extra_row"]
    _fuse(s, "gsa", tmp_path / "o.tif", 64, "qb")
    with rasterio.open(s["pan"]) as p, rasterio.open(tmp_path / "o.tif") as o:
        k = s["ratio"] - 1  # PAN pixels dropped at the start of each axis
        assert o.transform.c == pytest.approx(p.transform.c + k * p.transform.a)
        assert o.transform.f == pytest.approx(p.transform.f + k * p.transform.e)
        assert (o.height, o.width) == (2 * (s["ms_array"].shape[1] - 1), 2 * (s["ms_array"].shape[2] - 1))


def test_large_scene_statistics_from_a_central_window(scenes, tmp_path):
    s = scenes["r4_11bit"]
    rep = _fuse(s, "gsa", tmp_path / "o.tif", 48, "qb", stats_size=64)
    assert any("central 64x64" in n for n in rep.notes)
    full = _fuse(s, "gsa", tmp_path / "f.tif", 48, "qb")
    assert not any("central" in n for n in full.notes)
    assert not np.array_equal(_read(rep.out), _read(full.out))  # other statistics, said in the note


def test_data_make_aligns_a_half_pixel_pair_and_crops_to_the_ratio(tmp_path):
    import h5py
    from helpers import write_scene_pair

    from panfw_datasets.make import make_h5

    s = write_scene_pair(tmp_path / "mk", ratio=4, ms_size=(26, 23), half_pixel=True)
    res = make_h5(s["pan"], s["ms"], "qb", tmp_path / "o.h5", patch=8)
    assert res["overlap_ms"] == (24, 20)  # 25x22 after the alignment's first pixel, then multiples of 4
    assert any("Landsat" in n for n in res["notes"]) and any("multiple of the ratio" in n for n in res["notes"])
    with h5py.File(tmp_path / "o.h5") as f:
        np.testing.assert_array_equal(f["gt"][0], s["ms_array"][:, 1:9, 1:9])  # gt = the aligned MS
