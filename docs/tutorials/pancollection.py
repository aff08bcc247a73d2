"""Training on PanCollection h5 files: make a small folder in PanCollection's layout, check it, train
the paper's all-in-one recipe on it, and score the result.

    python docs/tutorials/pancollection.py            # 64 training patches per sensor, 1 epoch
    python docs/tutorials/pancollection.py --tiny     # 8 patches, 2 steps (what the tests run)

With the real files (https://huggingface.co/datasets/elsting/PanCollection) skip step 1 and point
``data.root`` (or ``$PANFW_DATA``) at their folder. Each ``panfw(...)`` line is the command line
``panfw ...``, run in this process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
from _cli import panfw_cmd  # runs `panfw ARGS` in this process

import panfw
from panfw.sensors import get_sensor


def write_h5(path: Path, sensor: str, split: str, n: int, size: int) -> None:
    """One PanCollection-layout file: keys gt (not at full resolution), ms, lms, pan; N x C x H x W
    float64 raw digital numbers. The images come from panfw's synthetic sensor simulator."""
    data = panfw.create_dataset("synthetic", split, sensor=sensor, n=n, size=size, seed=1)
    max_dn = get_sensor(sensor).max_dn
    keys = ("ms", "lms", "pan") if split == "test_fr" else ("gt", "ms", "lms", "pan")
    with h5py.File(path, "w") as f:
        for key in keys:
            stack = np.stack([data[i][key].numpy() for i in range(len(data))]).astype(np.float64)
            f.create_dataset(key, data=np.round(stack * max_dn))
    print(f"wrote {path.name}: {len(data)} x {tuple(data[0]['pan'].shape[1:])} PAN ({split})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few patches and steps (seconds)")
    parser.add_argument("--out", default="runs/tutorials", help="where the data folder and the run go")
    args = parser.parse_args()
    out = Path(args.out)
    root = out / "pancollection"
    root.mkdir(parents=True, exist_ok=True)
    n_train, patch, test = (8, 32, 64) if args.tiny else (64, 64, 128)

    # 1. A PanCollection folder: train_{s}.h5 for WV3, GF2 and QuickBird (the paper's training sets;
    #    PanCollection has no WV2 training set), test_{s}_multiExm1.h5 (reduced resolution, with gt)
    #    and test_{s}_OrigScale_multiExm1.h5 (full resolution) for the WV2, WV3 and GF2 test sets.
    for sensor in ("wv3", "gf2", "qb"):
        write_h5(root / f"train_{sensor}.h5", sensor, "train", n_train, patch)
    for sensor in ("wv2", "wv3", "gf2"):
        write_h5(root / f"test_{sensor}_multiExm1.h5", sensor, "test_rr", 1, test)
        write_h5(root / f"test_{sensor}_OrigScale_multiExm1.h5", sensor, "test_fr", 1, test)

    # 2. What panfw finds there, and what one file holds.
    panfw_cmd("data", "check", str(root))
    panfw_cmd("data", "info", str(root / "train_wv3.h5"))

    # 3. The paper's all-in-one run (WV3 + GF2 + QB mixed in one shuffled set), with the loss the
    #    released code trained with; shortened here by overrides.
    overrides = ["-s", f"data.root={root.as_posix()}", "-s", f"output.dir={out.as_posix()}",
                 "-s", "train.epochs=1", "-s", "train.batch_size=4", "-s", "eval.every=0", "-s", "eval.figures=1",
                 "-s", 'eval.baselines=["lms"]']
    if args.tiny:
        overrides += ["-s", "train.steps=2"]
    panfw_cmd("run", "recipes/pantiny_big_released.toml", *overrides)

    # 4. Score the trained model once more, on one test set, beside a classical method.
    run_dir = max((out / "pantiny_big_released").iterdir(), key=lambda p: p.stat().st_mtime)
    panfw_cmd("eval", str(run_dir / "best.pt"), "--data", f"gf2:root={root.as_posix()}", "--baseline", "gsa")


if __name__ == "__main__":
    main()
