"""``panfw data``: check a PanCollection folder, inspect an h5 file, make an h5 from a GeoTIFF pair."""

from __future__ import annotations

import json

import click


@click.group("data")
def data() -> None:
    """Data files: check a PanCollection folder, inspect a file, make training data from GeoTIFFs."""


@data.command("check")
@click.argument("root", required=False)
def check_cmd(root: str | None) -> None:
    """Which PanCollection files are under ROOT (default $PANFW_DATA), valid, or missing and where to get them."""
    from panfw_datasets.h5 import check_root

    rows = check_root(root)
    marks = {"ok": "ok", "missing": "--", "invalid": "!!", "n/a": "  "}
    for row in rows:
        where = row["path"] or " | ".join(row["names"])
        click.echo(f"{marks[row['status']]} {row['sensor']:<4} {row['split']:<8} {row['status']:<8} {where}")
        if row["detail"]:
            click.echo(f"      {row['detail']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "missing", "invalid")}
    click.echo(f"{counts['ok']} valid, {counts['missing']} missing, {counts['invalid']} invalid")
    if counts["invalid"]:
        from panfw.errors import DataError

        raise DataError(f"{counts['invalid']} file(s) under the data folder are not usable (marked !! above)")


@data.command("info")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--samples", default=32, show_default=True, help="Samples read for the value range.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(file: str, samples: int, as_json: bool) -> None:
    """Keys, shapes, dtype, value range and a sensor guess of an h5 FILE."""
    from panfw.errors import DataError
    from panfw_datasets.h5 import contract_problems, inspect_file

    info = inspect_file(file, max_samples=samples)
    problems = contract_problems(info)
    if as_json:
        click.echo(json.dumps({**info, "problems": problems}, indent=2, default=list))
        if problems:
            raise DataError(f"{file} is not a usable PanCollection file: {'; '.join(problems)}")
        return
    click.echo(f"{info['file']}  ({info['size_bytes'] / 2**20:.1f} MiB)")
    for key, e in info["keys"].items():
        shape = "x".join(str(s) for s in e["shape"])
        rng = ""
        if "min" in e:
            rng = f"  range [{e['min']:.6g}, {e['max']:.6g}] over {e['samples_read']} samples"
            if e["non_finite"]:
                rng += f", {e['non_finite']} non-finite"
        click.echo(f"  {key:<4} {shape:<18} {e['dtype']}{rng}")
    click.echo(f"sensor guess: {info['sensor_guess']}")
    if problems:
        raise DataError(f"{file} is not a usable PanCollection file: {'; '.join(problems)}")


@data.command("make")
@click.option("--pan", "pan", required=True, type=click.Path(dir_okay=False), help="Full-resolution PAN GeoTIFF.")
@click.option("--ms", "ms", required=True, type=click.Path(dir_okay=False), help="Full-resolution MS GeoTIFF.")
@click.option("--sensor", required=True, help="Sensor name (wv3, wv2, qb, gf2, ikonos, geoeye1, generic).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output h5 file.")
@click.option("--patch", default=64, show_default=True, help="Patch size on the reduced PAN grid.")
@click.option("--stride", default=None, type=int, help="Patch stride (default: the patch size).")
@click.option("--pan-mode", type=click.Choice(["bicubic", "mtf"]), default="bicubic", show_default=True,
              help="PAN degradation: MATLAB bicubic imresize (toolbox resize_images) or MTF + decimation.")
@click.option("--ratio", type=int, default=None, help="Expected PAN/MS ratio (default: the sensor's).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def make_cmd(pan: str, ms: str, sensor: str, out: str, patch: int, stride: int | None, pan_mode: str,
             ratio: int | None, overwrite: bool) -> None:
    """Make a PanCollection-format training h5 (gt/ms/lms/pan) from a GeoTIFF pair by Wald's protocol."""
    from panfw_datasets.make import make_h5

    res = make_h5(pan, ms, sensor, out, patch=patch, stride=stride, pan_mode=pan_mode, ratio=ratio,
                  overwrite=overwrite)
    h, w = res["overlap_ms"]
    for note in res.get("notes", ()):
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {res['out']}: {res['n']} patches of {res['patch']}x{res['patch']} ({res['bands']} bands, "
               f"ratio {res['ratio']}) from an overlap of {h}x{w} MS pixels"
               + (f"; {res['skipped']} patches skipped (nodata)" if res["skipped"] else ""))
