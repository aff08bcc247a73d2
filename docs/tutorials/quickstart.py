"""Quickstart: train and evaluate one PanTiny Small on built-in synthetic data, then read its report.

    python docs/tutorials/quickstart.py            # the recipe as shipped: a few minutes on a CPU
    python docs/tutorials/quickstart.py --tiny     # 2 steps on a handful of patches (what the tests run)

Each ``panfw_cmd(...)`` line below is the command line ``panfw ...``, run in this process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _cli import panfw_cmd  # runs `panfw ARGS` in this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on tiny data (seconds)")
    parser.add_argument("--out", default="runs/tutorials", help="where the run directory goes")
    args = parser.parse_args()

    # 1. What would run: the model, its size and cost, and the recipe resolved.
    panfw_cmd("show", "model", "pantiny_small")
    panfw_cmd("validate", "recipes/quickstart.toml")

    # 2. Train and evaluate. Any recipe key can be overridden with -s KEY=VALUE.
    overrides = ["-s", f"output.dir={args.out}"]
    if args.tiny:
        for i in range(3):  # three training sets (wv2, wv3, gf2) and three test sets
            overrides += ["-s", f"data.train.{i}.n=16", "-s", f"data.test.{i}.n=1", "-s", f"data.test.{i}.size=64"]
        overrides += ["-s", "train.steps=2", "-s", 'eval.baselines=["lms"]', "-s", "eval.figures=1"]
    panfw_cmd("run", "recipes/quickstart.toml", *overrides)

    # 3. The run directory: resolved recipe, checkpoints, results.json, report.md, figures.
    run_dir = max((Path(args.out) / "quickstart").iterdir(), key=lambda p: p.stat().st_mtime)
    print(sorted(p.name for p in run_dir.iterdir()))
    results = json.loads((run_dir / "results.json").read_text())
    for label, scores in results["final"].items():
        rr = scores["rr"]
        print(f"{label}: PSNR {rr['psnr']['mean']:.2f} dB, SAM {rr['sam']['mean']:.3f} deg")
    print((run_dir / "report.md").read_text())

    # 4. Score the trained model again on another test set, beside plain upsampling.
    panfw_cmd("eval", str(run_dir), "--data", "synthetic:sensor=qb,n=1,size=64", "--baseline", "lms")


if __name__ == "__main__":
    main()
