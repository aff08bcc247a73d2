"""A tiny plugin for the engine tests (model, dataset, loss, metrics small enough for a CPU test in
seconds), importable by the other engine test files and by subprocesses (``launch_script``).

The engine tests register it with ``register()`` and remove it with ``unregister()``."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import panfw

NAME = "engine_tiny"
TESTS = Path(__file__).resolve().parent


class TinyNet(nn.Module):
    """lms + a two-layer CNN of (lms, pan): the PanTiny global residual in miniature."""

    def __init__(self, bands: int = 4, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(bands + 1, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, bands, 3, padding=1))

    def forward(self, lms, pan, ms):
        return lms + self.body(torch.cat([lms, pan], 1))


def tiny_net(bands: int = 4, width: int = 8) -> nn.Module:
    """Tiny residual CNN."""
    return TinyNet(bands, width)


class Upsampled(nn.Module):
    """Parameter-free: the upsampled MS itself."""

    def forward(self, lms, pan, ms):
        return lms.clone()


def tiny_lms(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> nn.Module:
    """Plain upsampling (parameter-free)."""
    return Upsampled()


class TinySet(torch.utils.data.Dataset):
    """Smooth random scenes whose PAN is the band mean: a model can learn the detail from PAN."""

    def __init__(self, split: str, n: int = 32, size: int = 16, bands: int = 4, sensor: str = "wv3",
                 seed: int = 0, nan_index: int = -1, delay: float = 0.0) -> None:
        self.delay = delay if split == "train" else 0.0
        self.split, self.n, self.size, self.bands, self.sensor, self.ratio = split, n, size, bands, sensor, 4
        self.seed = seed + {"train": 0, "valid": 1, "test_rr": 2, "test_fr": 3}[split] * 1000
        self.nan_index = nan_index

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if self.delay:
            time.sleep(self.delay)
        g = torch.Generator().manual_seed(self.seed + i)
        s = self.size
        gt = torch.rand(1, self.bands, s // 4, s // 4, generator=g)
        gt = nn.functional.interpolate(gt, size=(s, s), mode="bilinear", align_corners=False)
        gt = (gt + 0.15 * torch.rand(1, 1, s, s, generator=g)).clamp(0, 1)[0]
        ms = nn.functional.avg_pool2d(gt[None], 4)[0]
        lms = nn.functional.interpolate(ms[None], size=(s, s), mode="bilinear", align_corners=False)[0]
        pan = gt.mean(0, keepdim=True)
        item = {"ms": ms, "lms": lms, "pan": pan, "gt": gt, "sensor": self.sensor, "index": i}
        if i == self.nan_index:
            item["gt"] = torch.full_like(gt, math.nan)
        return item


def tiny_set(split: str, root=None, n: int = 32, size: int = 16, bands: int = 4, sensor: str = "wv3",
             seed: int = 0, nan_index: int = -1, delay: float = 0.0):
    """Tiny deterministic scenes (``delay``: seconds of sleep per training sample, for tests)."""
    return TinySet(split, n=n, size=size, bands=bands, sensor=sensor, seed=seed, nan_index=nan_index,
                   delay=delay)


class TinyPSNR:
    name, kind, higher_is_better = "tiny_psnr", "reference", True

    def __call__(self, fused, reference, sensor=None):
        mse = ((fused.double() - reference.double()) ** 2).flatten(1).mean(1)
        return 10 * torch.log10(1 / mse)


class TinyMAE:
    name, kind, higher_is_better = "tiny_mae", "reference", False

    def __call__(self, fused, reference, sensor=None):
        return (fused.double() - reference.double()).abs().flatten(1).mean(1)


class TinyQNR:
    """A stand-in no-reference index: 1 - |mean band difference to PAN|."""

    name, kind, higher_is_better = "tiny_qnr", "no_reference", True

    def __call__(self, fused, ms, pan, sensor=None, lms=None):
        return 1 - (fused.double().mean(1) - pan.double()[:, 0]).abs().flatten(1).mean(1)


class TinyL1(nn.Module):
    def __init__(self, nan_at_call: int = 0) -> None:
        super().__init__()
        self.nan_at_call, self.calls = nan_at_call, 0

    def forward(self, pred, target):
        self.calls += 1
        loss = (pred - target).abs().mean()
        if self.nan_at_call and self.calls >= self.nan_at_call:
            loss = loss * math.nan
        return loss


def tiny_l1(nan_at_call: int = 0) -> nn.Module:
    """Mean absolute error (NaN from call ``nan_at_call`` on, for tests)."""
    return TinyL1(nan_at_call)


@panfw.hookimpl
def register_models(register):
    register("tiny_net", tiny_net)
    register("tiny_lms", tiny_lms)


@panfw.hookimpl
def register_datasets(register):
    register("tiny_set", tiny_set)


@panfw.hookimpl
def register_metrics(register):
    register("tiny_psnr", TinyPSNR)
    register("tiny_mae", TinyMAE)
    register("tiny_qnr", TinyQNR)


@panfw.hookimpl
def register_losses(register):
    register("tiny_l1", tiny_l1)


def register() -> None:
    from panfw.plugins import register_plugin

    register_plugin(sys.modules[__name__], name=NAME)


def unregister() -> None:
    from panfw.plugins import unregister_plugin

    unregister_plugin(NAME)


RECIPE = """
name = "tiny"
seed = 3
[model]
name = "tiny_net"
[[loss.terms]]
name = "tiny_l1"
[[data.train]]
name = "tiny_set"
n = 32
[[data.test]]
name = "tiny_set"
n = 4
[train]
epochs = 2
batch_size = 4
lr = 3e-3
deterministic = true
log_every = 1
device = "cpu"
[eval]
every = 1
rr_metrics = ["tiny_psnr", "tiny_mae"]
fr_metrics = ["tiny_qnr"]
best = "tiny_psnr"
baselines = ["tiny_lms"]
figures = 2
"""


def write_recipe(folder: Path, text: str = RECIPE, extra: str = "") -> Path:
    """The tiny recipe (plus ``extra`` TOML lines) in ``folder``, runs under folder/runs."""
    path = Path(folder) / "tiny.toml"
    body = text + extra
    if "[output]" not in body:
        body += f'\n[output]\ndir = "{(Path(folder) / "runs").as_posix()}"\n'
    path.write_text(body, encoding="utf-8")
    return path


LAUNCH = """import sys
sys.path.insert(0, {tests!r})
import test_engine_plugin
test_engine_plugin.register()
from panfw.cli import main
sys.argv[0] = "panfw"
main()
"""


def launch_script(folder: Path) -> Path:
    """A script that registers this plugin, then runs the panfw CLI with its arguments."""
    path = Path(folder) / "launch_panfw.py"
    path.write_text(LAUNCH.format(tests=str(TESTS)), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread (two stall on a shared, busy 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def start(args: list[str], folder: Path, env: dict) -> subprocess.Popen:
    """A subprocess in its own session (so ``finish`` can kill it and its children)."""
    return subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Wait for a subprocess; past ``timeout`` kill its whole process group and fail."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout} s:\n{out}\n{err}") from None


def test_tiny_plugin_registers_and_builds():
    register()
    try:
        model = panfw.create_model("tiny_net", bands=4)
        ds = panfw.create_dataset("tiny_set", "test_rr", n=2)
        x = ds[0]
        out = model(x["lms"][None], x["pan"][None], x["ms"][None])
        assert out.shape == x["gt"][None].shape
        assert panfw.create_metric("tiny_psnr")(x["lms"][None], x["gt"][None]).shape == (1,)
    finally:
        unregister()
    assert "tiny_net" not in panfw.registry("models")
