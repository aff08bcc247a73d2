"""``panfw eval``: a thin layer over ``panfw.procedures.evaluate.score``."""

from __future__ import annotations

import click

from panfw.cli.deploy import backend_option


@click.command("eval")
@click.argument("model", metavar="CHECKPOINT_OR_MODEL")
@click.option("--data", "data", multiple=True, metavar="NAME[:KEY=VALUE,...]",
              help="A test dataset and its options, e.g. wv3 or synthetic:sensor=gf2,n=8; repeat for more "
                   "[default: the checkpoint recipe's test sets].")
@click.option("--root", default="", help="PanCollection folder [default: the recipe's data.root or $PANFW_DATA].")
@click.option("--rr-metrics", help="Comma-separated reduced-resolution metrics [default: the recipe's, else "
                                   "psnr,ssim,sam,ergas,q2n].")
@click.option("--fr-metrics", help="Comma-separated full-resolution metrics [default: the recipe's, else "
                                   "d_lambda,d_s,qnr,hqnr].")
@click.option("--baseline", "baselines", multiple=True, metavar="MODEL",
              help="A parameter-free model to report beside it (e.g. lms, gs, mtf_glp_hpm); repeatable.")
@click.option("--max-images", default=0, show_default=True, help="Score at most N images per set (0: all).")
@click.option("--figures", default=3, show_default=True, help="Example images per reduced-resolution set.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
              help="Report folder [default: <run>/eval/<time> for a checkpoint, runs/eval/<model>/<time>].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@backend_option("the fastest here for the model; an .onnx or TensorRT file runs with its own")
def eval_cmd(model: str, data: tuple[str, ...], root: str, rr_metrics: str | None, fr_metrics: str | None,
             baselines: tuple[str, ...], max_images: int, figures: int, out_dir: str | None, device: str,
             backend: str | None) -> None:
    """Score a checkpoint, a run directory or a parameter-free model (lms, gs, ...) on test sets:
    reduced resolution (reference metrics) and full resolution (no-reference metrics), with the
    same tables and figures as a training run's report."""
    from panfw.procedures.evaluate import parse_data_option, score

    def names(text: str | None) -> list[str] | None:
        return [n.strip() for n in text.split(",") if n.strip()] if text else None

    score(model, [parse_data_option(d) for d in data], root=root, rr_metrics=names(rr_metrics),
          fr_metrics=names(fr_metrics), baselines=list(baselines), max_images=max_images, figures=figures,
          out_dir=out_dir, device=device, echo=click.echo, backend=backend)
