"""``panfw export`` and ``panfw fuse``: thin layers over ``panfw.export`` and ``panfw.inference``."""

from __future__ import annotations

import sys
from typing import Any

import click


class RuntimeOption(click.Option):
    """``--backend``: its help lists the runtimes registered and usable on this machine, computed only
    when help is shown (loading the registry at import would slow every command's start)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        try:
            from panfw.inference import describe_runtimes

            names = describe_runtimes()
        except Exception:  # noqa: BLE001 - help must render even with a broken plugin
            names = "see panfw list runtimes"
        self.help = f"{self.help} Here: {names}."
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = self.help.rsplit(" Here: ", 1)[0]


def backend_option(default_help: str) -> Any:
    """The shared ``--backend`` option of fuse and eval."""
    return click.option("--backend", cls=RuntimeOption, metavar="RUNTIME",
                        help=f"Runtime (panfw list runtimes) [default: {default_help}].")


@click.command("export")
@click.argument("model", metavar="CHECKPOINT_OR_MODEL")
@click.option("--trt", "fmts", flag_value="tensorrt", multiple=True,
              help="TensorRT via torch-tensorrt (CUDA; pip install 'panfw[trt]').")
@click.option("--onnx", "fmts", flag_value="onnx", multiple=True,
              help="ONNX (torch.onnx.export, dynamo), checked with onnxruntime.")
@click.option("--exported-program", "fmts", flag_value="exported_program", multiple=True,
              help="torch.export program (.pt2), loadable with torch.export.load.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="Output file [default: beside "
              "the checkpoint, or <model>.<ext> here].")
@click.option("--bands", type=int, help="Band count (for a registered model; a checkpoint knows its own).")
@click.option("--ratio", type=int, help="PAN/MS ratio [default: the checkpoint's, else 4].")
@click.option("--min-size", default=32, show_default=True, help="Smallest PAN-grid H, W the export accepts.")
@click.option("--opt-size", default=512, show_default=True, help="H, W TensorRT optimises for; first parity size.")
@click.option("--max-size", default=2048, show_default=True, help="Largest PAN-grid H, W the export accepts.")
@click.option("--fp16", "precision", flag_value="fp16", help="FP16 weights and compute (keep_fp32 modules stay FP32).")
@click.option("--bf16", "precision", flag_value="bf16", help="BF16 weights and compute (keep_fp32 modules stay FP32).")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def export_cmd(model: str, fmts: tuple[str, ...], out: str | None, bands: int | None, ratio: int | None,
               min_size: int, opt_size: int, max_size: int, precision: str | None, overwrite: bool) -> None:
    """Export a checkpoint, run directory or registered model with dynamic H, W (multiples of the ratio)
    and check parity with PyTorch. Choose one of --trt, --onnx, --exported-program."""
    from panfw.errors import UserError
    from panfw.export import export_model

    flags = {"tensorrt": "--trt", "onnx": "--onnx", "exported_program": "--exported-program"}
    chosen = list(dict.fromkeys(fmts))
    if not chosen:
        raise UserError("panfw export: choose a format: --trt, --onnx or --exported-program")
    if len(chosen) > 1:  # one -o, one parity report: one format per call, never a silent pick
        raise UserError(f"panfw export: one format per call, got {' and '.join(flags[f] for f in chosen)}; "
                        "run panfw export once for each")
    fmt = chosen[0]
    from pathlib import Path

    from panfw.export import default_output

    target = Path(out) if out else default_output(model, fmt, precision or "fp32")
    if target.exists() and not overwrite:
        raise UserError(f"-o {target} exists; pass --overwrite to replace it (every panfw command that writes "
                        "a file refuses to replace one without it)")
    result = export_model(model, fmt, out, bands=bands, ratio=ratio, min_size=min_size, opt_size=opt_size,
                          max_size=max_size, precision=precision or "fp32")
    click.echo(result.report())
    if not result.ok:
        click.echo(f"warning: the export differs from PyTorch by more than {result.tolerance:g}", err=True)
        sys.exit(1)


@click.command("fuse")
@click.option("--pan", "pan", required=True, type=click.Path(dir_okay=False), help="Panchromatic GeoTIFF.")
@click.option("--ms", "ms", required=True, type=click.Path(dir_okay=False), help="Multispectral GeoTIFF.")
@click.option("--model", "model", required=True, help="Checkpoint, run directory, registered model name, or "
              "an exported .onnx / .pt2 / TensorRT .ep file.")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="Output GeoTIFF.")
@click.option("--bits", type=int, help="Bit depth of the digital numbers [default: the model's sensor].")
@click.option("--sensor", help="Sensor (wv3, wv2, qb, gf2, ...): bit depth and band names for --bands bgrn.")
@click.option("--tile", type=int, help="Tile size in PAN pixels, a multiple of the ratio [default: 512, or the "
              "multiple of the ratio below it].")
@click.option("--overlap", type=int, help="Overlap between tiles in PAN pixels, a multiple of the ratio "
              "[default: 4x the model's measured reach, rounded up to the ratio; 64 where not measurable].")
@backend_option("onnxruntime for .onnx files, tensorrt for .trt.ep, else the fastest here for the model")
@click.option("--device", help="cpu or cuda [default: cuda when available].")
@click.option("--bands", help="MS bands for the model, 1-based as in GDAL (e.g. 2,3,5,7) or 'bgrn'.")
@click.option("--upsample", type=click.Choice(["interp23tap", "bicubic"]),
              help="MS upsampling onto the PAN grid [default: interp23tap for power-of-2 ratios].")
@click.option("--compress", type=click.Choice(["none", "deflate", "lzw", "zstd"]), default="none",
              show_default=True, help="Output compression.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
@click.option("--preview", type=click.Path(dir_okay=False), help="Also write an RGB quicklook PNG (at most 1024 "
              "px a side, 2-98 percentile stretch; R, G, B from the sensor's or 4-band B, G, R, NIR order).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A model option (panfw show model NAME lists them), e.g. -O floor_ms=true.")
@click.option("--stats-size", type=click.IntRange(min=1), default=None,
              help="Side in PAN pixels of the central window a classical method's image-wide statistics "
                   "come from [default: the whole scene up to 2048].")
def fuse_cmd(pan: str, ms: str, model: str, out: str, bits: int | None, sensor: str | None, tile: int | None,
             overlap: int | None, backend: str | None, device: str | None, bands: str | None, upsample: str | None,
             compress: str, quiet: bool, overwrite: bool, preview: str | None, options: tuple[str, ...],
             stats_size: int | None) -> None:
    """Fuse a PAN + MS GeoTIFF scene of any size, tile by tile, into a GeoTIFF on the PAN grid."""
    import warnings

    from panfw.inference.scene import fuse_scene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        report = fuse_scene(pan, ms, model, out, bits=bits, sensor=sensor, tile=tile, overlap=overlap,
                            backend=backend, device=device, bands=bands, upsample=upsample, compress=compress,
                            progress=not quiet, overwrite=overwrite, model_options=parse_options(options),
                            stats_size=stats_size, preview=preview)
    said = set()
    for w in caught:  # one line each, without a source location
        if not issubclass(w.category, UserWarning) or issubclass(w.category, DeprecationWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            continue
        said.add(str(w.message))
        click.echo(f"warning: {w.message}", err=True)
    for note in report.notes:
        if note not in said:
            click.echo(f"note: {note}", err=True)
    click.echo(report.summary())


def parse_options(items: tuple[str, ...] | list[str]) -> dict:
    """``KEY=VALUE`` pairs (values in TOML syntax, else strings) as a dict; a malformed one is a UserError."""
    from panfw.config.recipe import parse_value
    from panfw.errors import UserError

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r} is not KEY=VALUE (e.g. --option floor_ms=true)")
        out[key.strip()] = parse_value(raw.strip())
    return out
