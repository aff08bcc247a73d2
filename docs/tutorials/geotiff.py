"""Fusing a GeoTIFF scene: write a georeferenced 8-band MS + PAN pair, fuse it tile by tile with
``panfw fuse``, check the output's georeference, and look at it.

    python docs/tutorials/geotiff.py                   # a 1024 x 1024 PAN scene, a classical method
    python docs/tutorials/geotiff.py --tiny            # 256 x 256 (what the tests run)
    python docs/tutorials/geotiff.py --model runs/quickstart/<timestamp>/best.pt    # your trained model

The scene is simulated (panfw's synthetic WorldView-3-like sensor, 11-bit digital numbers) so the
tutorial needs no download; with a real pair, start at step 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from _cli import panfw_cmd  # runs `panfw ARGS` in this process
from rasterio.transform import from_origin

import panfw


def write_scene(folder: Path, size: int) -> tuple[Path, Path]:
    """A PAN (size x size, 0.5 m) and an 8-band MS (size/4, 2 m) over the same ground, UTM 33N, uint16."""
    sample = panfw.create_dataset("synthetic", "test_fr", sensor="wv3", n=1, size=size, seed=3)[0]
    west, north = 500_000.0, 4_650_000.0  # the two grids share their upper-left corner
    for name, key, pixel in (("pan.tif", "pan", 0.5), ("ms.tif", "ms", 2.0)):
        image = np.clip(np.round(sample[key].numpy() * 2047), 0, 2047).astype(np.uint16)
        with rasterio.open(folder / name, "w", driver="GTiff", width=image.shape[2], height=image.shape[1],
                           count=image.shape[0], dtype="uint16", crs="EPSG:32633",
                           transform=from_origin(west, north, pixel, pixel)) as dst:
            dst.write(image)
    return folder / "pan.tif", folder / "ms.tif"


def stretch(rgb: np.ndarray) -> np.ndarray:
    """2-98 % percentile stretch per band, for display."""
    lo, hi = np.percentile(rgb, (2, 98), axis=(0, 1))
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-9), 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a small scene (seconds)")
    parser.add_argument("--model", default="mtf_glp_hpm", help="checkpoint, run directory or registered name")
    parser.add_argument("--out", default="runs/tutorials", help="where the scene and the outputs go")
    args = parser.parse_args()
    folder = Path(args.out) / "geotiff"
    folder.mkdir(parents=True, exist_ok=True)
    size = 256 if args.tiny else 1024

    # 1. A scene: what a vendor delivers, a PAN and an MS GeoTIFF over the same ground.
    pan, ms = write_scene(folder, size)

    # 2. Fuse it. The scene is read and written tile by tile (tiles of --tile PAN pixels that overlap
    #    by --overlap and are blended), so memory does not grow with the scene. A model trained on 4
    #    bands takes --bands bgrn (B, G, R, NIR1 of the 8); a classical method fuses all 8.
    #    --preview writes an RGB quicklook PNG beside it; --overwrite replaces an earlier output
    #    (without it every panfw command refuses to replace a file).
    fused = folder / "fused.tif"
    bands = [] if args.model == "mtf_glp_hpm" else ["--bands", "bgrn"]
    panfw_cmd("fuse", "--pan", str(pan), "--ms", str(ms), "--model", args.model, "-o", str(fused),
              "--sensor", "wv3", "--tile", "128" if args.tiny else "512", "--overlap", "16" if args.tiny else "64",
              "--compress", "deflate", "--preview", str(folder / "preview.png"), "--overwrite", "--quiet", *bands)

    # 3. The output is on the PAN grid, with the PAN's georeference and the MS's data type.
    with rasterio.open(fused) as f, rasterio.open(pan) as p:
        print(f"fused: {f.count} bands, {f.width} x {f.height}, {f.dtypes[0]}, {f.crs}, pixel {f.res}")
        assert (f.width, f.height) == (p.width, p.height) and f.crs == p.crs and f.transform == p.transform
        out = f.read().astype(np.float64)
    with rasterio.open(ms) as m:
        low = m.read().astype(np.float64)
    with rasterio.open(pan) as p:
        pan_img = p.read(1).astype(np.float64)

    # 4. Look at it: preview.png is the fused image alone; here PAN, the MS (nearest-neighbour
    #    enlarged) and the fused image side by side, in natural colour
    #    (WorldView-3 bands 5, 3, 2 = red, green, blue; the fused image's first bands when --bands picked 4).
    rgb = (4, 2, 1) if out.shape[0] == 8 else (2, 1, 0)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = pan_img.shape[0] // low.shape[1]
    enlarged = low.repeat(ratio, axis=1).repeat(ratio, axis=2)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, (title, image) in zip(axes, (("PAN", None), ("MS (enlarged)", enlarged), ("fused", out))):
        if image is None:
            ax.imshow(stretch(pan_img[..., None])[..., 0], cmap="gray")
        else:
            ax.imshow(stretch(np.moveaxis(image[list(rgb)], 0, -1)))
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(folder / "quicklook.png", dpi=80)
    print(f"wrote {folder / 'quicklook.png'}")
    # the fused image keeps the MS's colours: its band means match the MS's within a few percent
    print("band means, MS vs fused:", np.round(low.mean(axis=(1, 2))).astype(int).tolist(),
          np.round(out.mean(axis=(1, 2))).astype(int).tolist())


if __name__ == "__main__":
    main()
