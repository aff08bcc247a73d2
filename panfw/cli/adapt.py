"""``panfw adapt``: one-shot per-scene adaptation (a thin layer over ``panfw.procedures.adapt``)."""

from __future__ import annotations

import click


@click.command("adapt")
@click.option("--pan", type=click.Path(dir_okay=False), help="Panchromatic GeoTIFF.")
@click.option("--ms", type=click.Path(dir_okay=False), help="Multispectral GeoTIFF.")
@click.option("--data", help="Instead of a GeoTIFF pair: a dataset's full-resolution sample, NAME[:key=value,...] "
              "(e.g. wv3, or synthetic:sensor=jl1,size=512).")
@click.option("--index", default=0, show_default=True, help="Sample index within --data.")
@click.option("--root", default="", help="PanCollection folder for --data [default: $PANFW_DATA].")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Fused image: .tif for a GeoTIFF pair, .h5 or .npz for a dataset sample; adapt.json, "
                   "adapt.md and adapt_curves.png are written beside it.")
@click.option("--model", help="Backbone: checkpoint, run directory or registered model name "
              "[default: fusionnet if installed, else pantiny_small, from initialisation].")
@click.option("--sensor", help="Sensor (MTF gains, bit depth): wv3, wv2, qb, gf2, jl1, ... [default: the "
              "checkpoint's, else generic].")
@click.option("--bits", type=int, help="Bit depth of the digital numbers [default: the sensor's, else from the data].")
@click.option("--device", help="cpu or cuda [default: cuda when available].")
@click.option("--recipe", type=click.Path(dir_okay=False), help="Recipe with an [adapt] section (and sweeps).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key, e.g. -s adapt.steps=400 -s adapt.p_fr=0.3 (see docs/adapt.md).")
@click.option("--seed", type=int, help="Random seed [default: the recipe's, 0].")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def adapt_cmd(pan: str | None, ms: str | None, data: str | None, index: int, root: str, out: str,
              model: str | None, sensor: str | None, bits: int | None, device: str | None, recipe: str | None,
              overrides: tuple[str, ...], seed: int | None, quiet: bool, overwrite: bool) -> None:
    """Adapt a model to one scene (TRA-PAN: spectral response, reduced-resolution warm-up, random
    full/reduced-resolution alternation), then fuse the scene with it."""
    import json

    from panfw.procedures.adapt import adapt

    sets = list(overrides)
    for key, value in (("model", model), ("sensor", sensor), ("bits", bits), ("device", device)):
        if value is not None:
            sets.append(f"adapt.{key}={json.dumps(value)}")
    if seed is not None:
        sets.append(f"seed={seed}")
    adapt(out, pan=pan, ms=ms, data=data, index=index, recipe=recipe, overrides=sets, root=root,
          progress=not quiet, echo=click.echo, overwrite=overwrite)
