"""Exporting a model: ONNX (any machine), a torch.export program, and TensorRT where CUDA is; then
run the exported file and compare it with PyTorch.

    python docs/tutorials/export.py                                   # PanTiny Small, untrained weights
    python docs/tutorials/export.py --model runs/quickstart/<timestamp>/best.pt
    python docs/tutorials/export.py --tiny                            # small size range (what the tests run)

An export accepts any PAN size from --min-size to --max-size that is a multiple of the ratio
(dynamic H and W); ``panfw export`` checks it against PyTorch at several sizes and exits 1 if they
differ by more than the tolerance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _cli import panfw_cmd  # runs `panfw ARGS` in this process

import panfw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a small size range (seconds)")
    parser.add_argument("--model", default="pantiny_small", help="checkpoint, run directory or registered name")
    parser.add_argument("--out", default="runs/tutorials", help="where the exported files go")
    args = parser.parse_args()
    folder = Path(args.out) / "export"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = ["--min-size", "32", "--opt-size", "64", "--max-size", "128"] if args.tiny else []
    bands = ["--bands", "4"] if not Path(args.model).exists() else []  # a checkpoint knows its bands

    # 1. ONNX, checked with onnxruntime.
    onnx_file = folder / "model.onnx"
    panfw_cmd("export", args.model, "--onnx", "-o", str(onnx_file), "--overwrite", *bands, *sizes)

    # 2. Any exported file loads like a checkpoint (panfw.load_model, or --model of panfw fuse and
    #    panfw eval) and is called like the model: (lms, pan, ms) -> fused, here at a size the export
    #    was never run at.
    runtime = panfw.load_model(str(onnx_file))
    torch.manual_seed(0)
    lms, pan, ms = torch.rand(1, 4, 96, 96), torch.rand(1, 1, 96, 96), torch.rand(1, 4, 24, 24)
    out = runtime(lms, pan, ms)
    print(f"{runtime.name} on {runtime.device}: output {tuple(out.shape)}, range [{out.min():.3f}, {out.max():.3f}]")
    assert out.shape == lms.shape

    # 3. TensorRT on a CUDA machine (pip install 'panfw[trt]'), FP16 with LayerNorm kept in FP32.
    if torch.cuda.is_available():
        panfw_cmd("export", args.model, "--trt", "--fp16", "-o", str(folder / "model.trt.ep"), "--overwrite",
                  *bands, *sizes)
    else:
        print("no CUDA device here: skipping panfw export --trt")


if __name__ == "__main__":
    main()
