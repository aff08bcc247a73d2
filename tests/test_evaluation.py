"""panfw.evaluation.Evaluator: accumulation, mean/std, skipping, mixed sensors, distributed gathering."""

from __future__ import annotations

import math

import pytest
import torch

import panfw
from panfw.errors import UserError
from panfw.evaluation import Evaluator, group_by_sensor, summarize

RR = ["psnr", "sam", "ergas", "q2n"]
FR = ["d_lambda", "d_s", "qnr", "hqnr"]


def _sample(seed: int, bands: int = 4, size: int = 64, sensor: str = "wv3") -> dict:
    from panfw.ops import decimate, interp23tap, mtf_filter

    g = torch.Generator().manual_seed(seed)
    gt = torch.nn.functional.avg_pool2d(torch.rand(1, bands, size, size, generator=g, dtype=torch.float64), 5,
                                        stride=1, padding=2, count_include_pad=False) * 0.7 + 0.1
    ms = decimate(mtf_filter(gt, sensor), 4)
    return {"gt": gt[0].float(), "ms": ms[0].float(), "lms": interp23tap(ms, 4)[0].float(),
            "pan": gt.mean(1)[0:1].float(), "sensor": sensor, "index": seed}


def _collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in ("gt", "ms", "lms", "pan")}
    out["sensor"] = [s["sensor"] for s in samples]
    out["index"] = torch.tensor([s["index"] for s in samples])
    return out


def _fuse(batch: dict) -> torch.Tensor:
    """A stand-in model: lms plus a little of the PAN's detail."""
    from panfw.ops import decimate, interp23tap

    pan = batch["pan"].double()
    return (batch["lms"].double() + 0.5 * (pan - interp23tap(decimate(pan, 4), 4))).clamp(0, 1).float()


def test_summarize():
    s = summarize(torch.tensor([1.0, 2.0, 4.0]))
    assert s["n"] == 3 and s["mean"] == pytest.approx(7 / 3)
    assert s["std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert summarize(torch.tensor([5.0])) == {"mean": 5.0, "std": 0.0, "n": 1}


def test_group_by_sensor():
    assert group_by_sensor("wv3", 3) == [("wv3", None)]
    assert group_by_sensor(["wv3", "wv3"], 2) == [("wv3", None)]
    groups = group_by_sensor(["wv3", "gf2", "wv3"], 3)
    assert [(s, i.tolist()) for s, i in groups] == [("wv3", [0, 2]), ("gf2", [1])]
    with pytest.raises(UserError, match="sensor names"):
        group_by_sensor(["wv3"], 2)


def test_accumulates_per_image_values_over_batches():
    samples = [_sample(i) for i in range(5)]
    ev = Evaluator(RR + FR, sensor="wv3")
    per_image = {name: [] for name in RR + FR}
    for chunk in (samples[:2], samples[2:]):
        batch = _collate(chunk)
        fused = _fuse(batch)
        out = ev.update(fused, batch)
        assert set(out) == set(RR + FR)
        for name in RR + FR:
            m = panfw.create_metric(name)
            if m.kind == "reference":
                v = m(fused, batch["gt"], sensor="wv3")
            else:
                v = m(fused, batch["ms"], batch["pan"], sensor="wv3", lms=batch["lms"])
            assert torch.equal(out[name], v.cpu())
            per_image[name].append(v)
    res = ev.compute()
    for name in RR + FR:
        v = torch.cat(per_image[name])
        assert res[name]["n"] == 5
        assert res[name]["mean"] == pytest.approx(float(v.mean()), rel=1e-12)
        assert res[name]["std"] == pytest.approx(float(v.std()), rel=1e-12)
    assert ev.values()["sam"].shape == (5,)
    ev.reset()
    assert ev.compute() == {}


def test_reference_metrics_skipped_without_gt():
    batch = _collate([_sample(0), _sample(1)])
    del batch["gt"]
    ev = Evaluator(["sam", "qnr"], sensor="wv3")
    ev.update(_fuse(batch), batch)
    res = ev.compute()
    assert set(res) == {"qnr"} and res["qnr"]["n"] == 2


def test_no_reference_metric_needs_pan():
    batch = _collate([_sample(0)])
    fused = _fuse(batch)
    del batch["pan"]
    with pytest.raises(UserError, match="pan"):
        Evaluator(["d_s"], sensor="wv3").update(fused, batch)


def test_mixed_sensor_batch():
    samples = [_sample(0, sensor="wv3"), _sample(1, sensor="gf2"), _sample(2, sensor="wv3")]
    batch = _collate(samples)
    fused = _fuse(batch)
    ev = Evaluator(["q2n", "hqnr"])
    out = ev.update(fused, batch)
    for i, s in enumerate(samples):
        one = _collate([s])
        q = panfw.create_metric("q2n")(fused[i:i + 1], one["gt"], sensor=s["sensor"])
        h = panfw.create_metric("hqnr")(fused[i:i + 1], one["ms"], one["pan"], sensor=s["sensor"], lms=one["lms"])
        assert float(out["q2n"][i]) == float(q[0])
        assert float(out["hqnr"][i]) == float(h[0])


def test_metric_specs_and_labels():
    sam_rad = panfw.create_metric("sam", units="rad")
    ev = Evaluator({"sam_deg": "sam", "sam_rad": sam_rad, "q_16": {"name": "q2n", "block_size": 16},
                    "ergas": ("ergas", {"cut": 0})}, sensor="wv3")
    batch = _collate([_sample(3)])
    out = ev.update(_fuse(batch), batch)
    assert float(out["sam_deg"][0]) == pytest.approx(math.degrees(float(out["sam_rad"][0])), rel=1e-12)
    assert set(out) == {"sam_deg", "sam_rad", "q_16", "ergas"}
    with pytest.raises(UserError, match="given twice"):
        Evaluator(["sam", sam_rad])
    with pytest.raises(panfw.errors.RegistryError):
        Evaluator(["samm"])
    with pytest.raises(UserError, match="cannot use"):
        Evaluator([3])


def test_nan_policy():
    ev = Evaluator(["psnr"], nan="omit")
    ev._values["psnr"] = [torch.tensor([1.0, float("nan"), 3.0], dtype=torch.float64)]
    assert ev.compute()["psnr"] == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}
    with pytest.raises(UserError, match="nan"):
        Evaluator(["psnr"], nan="drop")


def test_all_gather_hook_and_index_deduplication():
    """Two 'ranks' seeing the same images (as DistributedSampler's padding does) count them once."""
    batch = _collate([_sample(0), _sample(1)])
    fused = _fuse(batch)
    ev = Evaluator(["psnr", "sam"], sensor="wv3", all_gather=lambda obj: [obj, obj])
    ev.update(fused, batch)
    assert ev.compute()["psnr"]["n"] == 2
    no_index = {k: v for k, v in batch.items() if k != "index"}
    ev2 = Evaluator(["psnr"], sensor="wv3", all_gather=lambda obj: [obj, obj])
    ev2.update(fused, no_index)
    assert ev2.compute()["psnr"]["n"] == 4


def _dist_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        samples = [_sample(i) for i in range(5)]
        mine = samples[rank::world] + ([samples[0]] if rank == 1 else [])  # a padded repeat of image 0
        ev = Evaluator(["psnr", "q2n"], sensor="wv3")
        for s in mine:
            b = _collate([s])
            ev.update(_fuse(b), b)
        res = ev.compute()
        if rank == 0:
            torch.save(res, out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_torch_distributed_reduction(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "res.pt"
    mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    res = torch.load(out, weights_only=False)
    ev = Evaluator(["psnr", "q2n"], sensor="wv3")
    for i in range(5):
        b = _collate([_sample(i)])
        ev.update(_fuse(b), b)
    ref = ev.compute()
    for name in ("psnr", "q2n"):
        assert res[name]["n"] == 5
        assert res[name]["mean"] == pytest.approx(ref[name]["mean"], rel=1e-12)


def test_single_process_distributed_is_a_no_op(tmp_path):
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group already exists")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        ev = Evaluator(["psnr"], sensor="wv3")
        b = _collate([_sample(0)])
        ev.update(_fuse(b), b)
        assert ev.compute()["psnr"]["n"] == 1
    finally:
        dist.destroy_process_group()
