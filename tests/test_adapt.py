"""panfw adapt (TRA-PAN per-scene adaptation): the spectral response, the no-reference losses, the
alternation, a tiny adaptation, GeoTIFF and dataset-sample round trips, checkpoint and name backbones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import panfw
from panfw.config.recipe import loads_recipe
from panfw.errors import UserError
from panfw.procedures.adapt import (
    Adapter,
    CropSampler,
    SpectralResponse,
    draw_schedule,
    fit_response,
    prepare_scene,
)

TINY = ["adapt.warmup_steps=3", "adapt.steps=6", "adapt.response_steps=20", "adapt.crop=32", "adapt.batch_size=2",
        "adapt.select_every=3", "adapt.eval_size=64", "adapt.baselines=[]"]


def smooth_image(c: int, size: int, seed: int) -> torch.Tensor:
    """A smooth random image (1, c, size, size) in about [0.1, 0.7]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, c, size // 8, size // 8, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (0.1 + 0.6 * x.clamp(0, 1)).float()


class KnownResponse(torch.nn.Module):
    """A fixed, mildly non-linear spectral response."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.tensor([0.15, 0.35, 0.3, 0.2], dtype=x.dtype).view(1, -1, 1, 1)
        lin = (x * w).sum(1, keepdim=True)
        return lin + 0.3 * lin**2


def test_response_fits_a_known_spectral_response():
    ms = torch.rand(1, 4, 48, 48, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.05
    pan = KnownResponse()(ms)
    r, curve = fit_response(ms, pan, steps=300, lr=3e-2, seed=0)
    assert curve[-1] < curve[0] / 1000
    test = torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.05
    err = r(test) - KnownResponse()(test)
    span = float(pan.max() - pan.min())
    # unseen random spectra (harder than real ones, which are correlated): RMSE < 1 %, worst < 5 % of the range
    assert err.pow(2).mean().sqrt() < 0.01 * span and err.abs().max() < 0.05 * span
    assert isinstance(r, SpectralResponse) and not any(p.requires_grad for p in r.parameters())


@pytest.mark.parametrize("sensor", ["wv3", "jl1"])
def test_fr_losses_zero_when_consistent_and_positive_otherwise(sensor):
    from panfw_losses.no_reference import mtf_reduce

    c = 8 if sensor == "wv3" else 4
    x = smooth_image(c, 64, 3)
    ms = mtf_reduce(x, sensor, 4)
    spectral = panfw.create("losses", "spectral_consistency", sensor=sensor)
    spatial = panfw.create("losses", "spatial_consistency", sensor=sensor)
    w = torch.linspace(0.5, 1.5, c).view(1, c, 1, 1) / c
    spatial.response = lambda y: (y * w).sum(1, keepdim=True)
    pan = spatial.response(x)
    assert spectral(x, ms, pan) < 1e-6
    assert spatial(x, ms, pan) < 1e-6
    # a blurred image is still spectrally close, but no longer makes the PAN; noise breaks both
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    assert spectral(noisy, ms, pan) > 1e-3 and spatial(noisy, ms, pan) > 1e-2
    blurred = torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    assert spatial(blurred, ms, pan) > 1e-4
    # the plain upsampled MS lacks the PAN's detail
    from panfw.ops import interp23tap

    assert spatial(interp23tap(ms, 4), ms, pan) > spatial(x, ms, pan) + 1e-4
    # without a fitted response, a linear one is fitted on the fly: still positive for noise
    plain = panfw.create("losses", "spatial_consistency", sensor=sensor, margin=1)
    assert plain(noisy, ms, pan) > plain(x, ms, pan)


def test_spatial_quality_is_a_differentiable_d_s():
    from panfw_losses.no_reference import mtf_reduce

    x = smooth_image(4, 64, 5)
    ms = mtf_reduce(x, "generic", 4)
    pan = x.mean(1, keepdim=True)
    q = panfw.create("losses", "spatial_quality", block=16)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).requires_grad_()
    loss = q(noisy, ms, pan)
    loss.backward()
    assert loss > q(x, ms, pan) and torch.isfinite(noisy.grad).all() and noisy.grad.abs().sum() > 0
    with pytest.raises(UserError, match="block"):
        panfw.create("losses", "spatial_quality", block=16, margin=3)(x[..., :32, :32], ms[..., :8, :8],
                                                                       pan[..., :32, :32])


def test_no_reference_losses_are_registered_as_such():
    reg = panfw.registry("losses")
    for name in ("spectral_consistency", "spatial_consistency", "spatial_quality"):
        assert reg.get(name).meta.get("kind") == "no_reference"
    with pytest.raises(UserError, match="norm"):
        panfw.create("losses", "spectral_consistency", norm="l3")


def test_alternation_draws_fr_with_the_configured_probability():
    s = draw_schedule(20000, 7, 0.3, seed=5)
    assert s[:7] == [False] * 7 and len(s) == 20007
    frac = sum(s[7:]) / 20000
    assert abs(frac - 0.3) < 0.015
    assert draw_schedule(200, 0, 0.5, seed=5) == draw_schedule(200, 0, 0.5, seed=5)
    assert draw_schedule(200, 0, 0.5, seed=5) != draw_schedule(200, 0, 0.5, seed=6)
    assert not any(draw_schedule(100, 0, 0.0)) and all(draw_schedule(100, 0, 1.0))
    with pytest.raises(UserError, match="p_fr"):
        draw_schedule(10, 0, 1.5)


def _synthetic_region(sensor: str = "jl1", size: int = 128, seed: int = 0):
    from panfw.sensors import get_sensor
    from panfw_datasets.synthetic import make_tile

    t = make_tile(sensor, "test_fr", seed, size, seed=0)
    k = float(get_sensor(sensor).max_dn)
    return prepare_scene(t["ms"][None] / k, t["pan"][None] / k, sensor, 4, "mtf", lms=t["lms"][None] / k), t


def test_crops_are_aligned_and_seeded():
    reg, _ = _synthetic_region(size=128)
    sampler = CropSampler([reg], crop=32, batch=3, seed=1)
    a, b = sampler.sample(4, True), sampler.sample(4, True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["lms"].shape == (3, 4, 32, 32) and a["pan"].shape == (3, 1, 32, 32) and a["ms"].shape == (3, 4, 8, 8)
    rr = sampler.sample(5, False)
    assert rr["gt"].shape == (3, 4, 32, 32) and rr["ms"].shape == (3, 4, 8, 8)
    small, _ = _synthetic_region(size=64)  # an RR grid of 16 px: crops shrink to fit
    assert CropSampler([small], crop=32, batch=1).sample(0, False)["gt"].shape == (1, 4, 16, 16)
    # the FR ms crop is the MS under its lms crop: interp23tap of the ms crop matches lms inside
    from panfw.ops import interp23tap

    no_flip = CropSampler([reg], crop=32, batch=1, seed=1, flips=False).sample(0, True)
    inner = (interp23tap(no_flip["ms"], 4) - no_flip["lms"])[..., 12:-12, 12:-12].abs().max()
    assert inner < 2e-3


def _settings(**kw):
    r = loads_recipe("")
    spec = r.adapt
    for k, v in {"warmup_steps": 0, "steps": 30, "p_fr": 1.0, "response_steps": 60, "crop": 48, "batch_size": 2,
                 "select": "last", "eval_size": 128, "baselines": [], **kw}.items():
        setattr(spec, k, v)
    return spec


def test_tiny_adaptation_lowers_the_full_resolution_loss():
    reg, _ = _synthetic_region(size=128)
    torch.manual_seed(0)
    model = panfw.create_model("pantiny_small", bands=4)
    s = _settings()
    adapter = Adapter(model, [reg], "jl1", s)

    def fr_loss(m):
        with torch.no_grad():
            out = m(reg.lms, reg.pan, reg.ms)
            return float(s.spectral_weight * adapter.spectral(out, reg.ms, reg.pan, sensor="jl1")
                         + s.spatial_weight * adapter.spatial(out, reg.ms, reg.pan, sensor="jl1"))

    torch.manual_seed(0)
    before_model = panfw.create_model("pantiny_small", bands=4)
    result = adapter.run()
    assert result.n_fr == 30 and result.n_rr == 0
    assert fr_loss(result.model) < 0.8 * fr_loss(before_model)
    assert math.isfinite(result.scores["adapted"]["hqnr"])


def test_adaptation_is_reproducible():
    reg, _ = _synthetic_region(size=64)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = panfw.create_model("pantiny_small", bands=4)
        res = Adapter(model, [reg], "jl1", _settings(steps=4, p_fr=0.5, warmup_steps=2, crop=32, eval_size=64,
                                                        response_steps=10)).run()
        with torch.no_grad():
            outs.append(res.model(reg.lms, reg.pan, reg.ms))
    assert torch.equal(outs[0], outs[1])


def write_pair(tmp_path, sensor: str = "jl1", size: int = 128, dtype: str = "uint16", nodata: float | None = 0,
               crs: str = "EPSG:32650", seed: int = 0):
    """A synthetic acquisition as a georeferenced PAN/MS GeoTIFF pair (integer DN)."""
    import rasterio
    from rasterio.transform import from_origin

    from panfw_datasets.synthetic import make_tile

    t = make_tile(sensor, "test_fr", seed, size, seed=0)
    pan, ms = t["pan"].numpy(), t["ms"].numpy()
    if nodata is not None:  # a no-data corner, as scene edges have
        ms[:, :3, :3] = nodata
        pan[:, :12, :12] = nodata
    x0, y0, res = 500000.0, 4400000.0, 0.75
    paths = tmp_path / "pan.tif", tmp_path / "ms.tif"
    for path, arr, px in ((paths[0], pan, res), (paths[1], ms, 4 * res)):
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                           dtype=dtype, crs=crs, transform=from_origin(x0, y0, px, px), nodata=nodata) as dst:
            dst.write(arr.astype(dtype))
    return paths


def test_geotiff_round_trip_keeps_georeference_dtype_and_nodata(tmp_path):
    import rasterio
    from click.testing import CliRunner

    from panfw.cli import cli

    pan, ms = write_pair(tmp_path)
    out = tmp_path / "out" / "fused.tif"
    args = ["adapt", "--pan", str(pan), "--ms", str(ms), "-o", str(out), "--model", "pantiny_small",
            "--sensor", "jl1", "--quiet"] + [a for s in TINY for a in ("-s", s)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as o, rasterio.open(pan) as p, rasterio.open(ms) as m:
        assert o.crs == p.crs and o.transform == p.transform and (o.width, o.height) == (p.width, p.height)
        assert o.count == m.count and o.dtypes[0] == "uint16" and o.nodata == 0
        a = o.read()
        assert (a[:, :12, :12] == 0).all() and (a[:, 20:, 20:] > 0).all()
        assert a.max() <= 4095
    report = json.loads((out.parent / "adapt.json").read_text())
    assert report["sensor"] == "jl1" and report["bits"] == 12 and report["model"]["name"] == "pantiny_small"
    assert {"lms", "unadapted", "adapted"} <= set(report["scores"])
    assert report["scores"]["adapted"]["hqnr"] >= report["scores"]["unadapted"]["hqnr"]  # selection keeps the best
    assert (out.parent / "adapt.md").is_file() and (out.parent / "adapt_curves.png").is_file()
    # the rule of every command that writes: an existing output is refused before any work
    before = out.read_bytes()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output
    assert out.read_bytes() == before


def _checkpoint(tmp_path, bands: int = 4):
    from panfw.io.checkpoint import save_checkpoint

    torch.manual_seed(3)
    model = panfw.create_model("pantiny_small", bands=bands)
    path = tmp_path / "best.pt"
    save_checkpoint({"model": {"name": "pantiny_small", "options": {"bands": bands},
                               "state_dict": model.state_dict()},
                     "data": {"sensor": "gf2", "bands": bands, "ratio": 4, "bit_depth": 10}}, path)
    return path, model


def test_checkpoint_backbone_and_registered_backbone(tmp_path):
    from panfw.procedures.adapt import adapt

    ckpt, original = _checkpoint(tmp_path)
    data = "synthetic:sensor=jl1,n=1,size=64"
    res = adapt(tmp_path / "a" / "fused.npz", data=data, index=0, overrides=TINY + [f"adapt.model={json.dumps(str(ckpt))}"],
                progress=False, echo=lambda m: None)
    assert res["model"]["kind"] == "checkpoint" and res["model"]["trained"] and res["sensor"] == "jl1"
    f = np.load(tmp_path / "a" / "fused.npz")
    assert f["fused"].shape == (4, 64, 64) and 0 <= f["fused"].min() and f["fused"].max() <= 4095
    # the checkpoint on disk is not changed by adapting a copy of it
    from panfw.io.resolve import resolve_model

    again = resolve_model(ckpt).model_or_runtime
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), original.state_dict().values()))
    res2 = adapt(tmp_path / "b" / "fused.h5", data=data, index=0, overrides=TINY + ['adapt.model="pantiny_small"'],
                 progress=False, echo=lambda m: None)
    assert res2["model"]["kind"] == "registered" and not res2["model"]["trained"]
    import h5py

    with h5py.File(tmp_path / "b" / "fused.h5") as f:
        assert f["fused"].shape == (1, 4, 64, 64)


def test_band_mismatch_and_bad_inputs_are_user_errors(tmp_path):
    from panfw.procedures.adapt import adapt

    ckpt, _ = _checkpoint(tmp_path, bands=4)
    with pytest.raises(UserError, match="4 bands but the scene has 8"):
        adapt(tmp_path / "x.npz", data="synthetic:sensor=wv3,n=1,size=64", overrides=TINY + [
            f"adapt.model={json.dumps(str(ckpt))}"], progress=False, echo=lambda m: None)
    with pytest.raises(UserError, match="--pan and --ms"):
        adapt(tmp_path / "x.tif", pan=tmp_path / "p.tif", progress=False)
    with pytest.raises(UserError, match="not found"):
        adapt(tmp_path / "x.tif", pan=tmp_path / "p.tif", ms=tmp_path / "m.tif", progress=False)


def test_adapt_section_sweeps(tmp_path):
    from panfw.procedures.adapt import adapt

    recipe = tmp_path / "sweep.toml"
    recipe.write_text('[adapt]\nmodel = "pantiny_small"\nwarmup_steps = 2\nsteps = 3\nresponse_steps = 5\n'
                      'crop = 32\nbatch_size = 1\neval_size = 64\nbaselines = []\n\n'
                      '[[sweep]]\nname = "rr_only"\nset = {"adapt.p_fr" = 0.0}\n\n'
                      '[[sweep]]\nname = "fr_only"\nset = {"adapt.p_fr" = 1.0}\n')
    res = adapt(tmp_path / "out" / "fused.npz", data="synthetic:sensor=jl1,n=1,size=64", recipe=str(recipe),
                progress=False, echo=lambda m: None)
    assert set(res) == {"rr_only", "fr_only"}
    assert res["rr_only"]["steps"]["full_resolution"] == 0 and res["fr_only"]["steps"]["full_resolution"] == 3
    assert (tmp_path / "out" / "sweep.md").is_file() and (tmp_path / "out" / "fr_only" / "adapt.json").is_file()
