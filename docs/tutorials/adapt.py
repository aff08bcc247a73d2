"""One-shot adaptation: take a model trained on other satellites and adapt it to one scene of a sensor
it has never seen (a Jilin-1-like, 12-bit sensor), with no reference image, then compare the
no-reference scores before and after.

    python docs/tutorials/adapt.py                     # trains a quickstart backbone first (minutes)
    python docs/tutorials/adapt.py --model runs/quickstart/<timestamp>/best.pt
    python docs/tutorials/adapt.py --tiny              # an untrained backbone, a few steps (what the tests run)

Each ``panfw_cmd(...)`` line is the command line ``panfw ...``, run in this process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _cli import panfw_cmd  # runs `panfw ARGS` in this process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="an untrained backbone and a few steps (seconds)")
    parser.add_argument("--model", help="backbone checkpoint or run directory [default: train one]")
    parser.add_argument("--out", default="runs/tutorials", help="where the runs and outputs go")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. A backbone trained on the synthetic WV2-, WV3- and GF2-like sensors (the quickstart).
    model = args.model
    if model is None and args.tiny:
        model = "pantiny_small"  # a registered name: its initial weights, enough to see the steps run
    if model is None:
        panfw_cmd("run", "recipes/quickstart.toml", "-s", f"output.dir={out.as_posix()}", "-s", "eval.figures=0")
        model = str(max((out / "quickstart").iterdir(), key=lambda p: p.stat().st_mtime))

    # 2. Adapt it to one full-resolution scene of the unseen sensor and fuse that scene. With a real
    #    scene: panfw adapt --pan pan.tif --ms ms.tif --model ... -o fused.tif
    scene = "synthetic:sensor=jl1,size=128" if args.tiny else "synthetic:sensor=jl1,size=512"
    fused = out / "adapt" / "fused.npz"
    fused.unlink(missing_ok=True)  # panfw commands refuse to replace an earlier output
    settings = []
    if args.tiny:
        settings = ["-s", "adapt.response_steps=10", "-s", "adapt.warmup_steps=2", "-s", "adapt.steps=4",
                    "-s", "adapt.crop=32", "-s", "adapt.eval_size=64", "-s", "adapt.select_every=2"]
    panfw_cmd("adapt", "--data", scene, "--model", model, "-o", str(fused), "--quiet", *settings)

    # 3. What it did: adapt.md (scores before and after, beside plain upsampling and a classical
    #    method), adapt.json (the same as data) and adapt_curves.png (the losses).
    print((fused.parent / "adapt.md").read_text())
    record = json.loads((fused.parent / "adapt.json").read_text())
    print(f"kept step {record['selected_step']}; steps {record['steps']}; seconds {record['seconds']}")


if __name__ == "__main__":
    main()
