"""What a run shows and records: a progress bar on a terminal (plain lines otherwise), a text log,
``metrics.csv`` (long format: step, epoch, key, value) and TensorBoard events when installed."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from panfw.evaluation.results import CSV_FIELDS, human_time, read_metrics_csv

__all__ = ["RunLog", "human_time", "read_metrics_csv"]


class RunLog:
    """Console output (rank 0 only), train.log, metrics.csv and TensorBoard for one run."""

    def __init__(self, run_dir: Path | None, active: bool, total_steps: int, start_step: int = 0,
                 tty: bool | None = None) -> None:
        self.active = active
        self.run_dir = run_dir
        self.total_steps = total_steps
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bar: Any = None
        self._csv = None
        self._writer = None
        self._tb = None
        self._log = None
        self._t0 = time.perf_counter()
        self._s0 = start_step
        if not active or run_dir is None:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self._log = (run_dir / "train.log").open("a", encoding="utf-8")
        csv_path = run_dir / "metrics.csv"
        rows = [r for r in read_metrics_csv(csv_path) if r["step"] <= start_step]
        new = not rows
        self._csv = csv_path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._csv)
        self._writer.writerow(CSV_FIELDS)
        for r in rows:  # a resumed run drops what was logged after its checkpoint
            self._writer.writerow([r["step"], r["epoch"], r["key"], repr(r["value"])])
        self._csv.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=None if new else start_step + 1)
        except Exception:  # noqa: BLE001 - tensorboard is optional
            self._tb = None

    # -- console ------------------------------------------------------------------------------
    def echo(self, message: str) -> None:
        """A line on the console (above the bar) and in train.log."""
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, flush=True)
        if self._log:
            self._log.write(message + "\n")
            self._log.flush()

    def start_bar(self, step: int) -> None:
        if self.active and self.tty and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_steps, initial=step, unit="step", dynamic_ncols=True,
                            file=sys.stderr, smoothing=0.1)
        self._t0, self._s0 = time.perf_counter(), step

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        """One optimiser step done (bar only)."""
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}", refresh=False)
            self.bar.set_postfix_str(f"loss {loss:.4g}  lr {lr:.2e}", refresh=False)
            self.bar.update(1)

    def speed(self, step: int) -> float:
        dt = time.perf_counter() - self._t0
        return (step - self._s0) / dt if dt > 0 else float("nan")

    def epoch_line(self, epoch: int, n_epochs: int | None, step: int, loss: float, lr: float) -> None:
        """The plain per-epoch line (always in train.log; on the console when there is no bar)."""
        sp = self.speed(step)
        eta = (self.total_steps - step) / sp if sp and sp == sp else float("nan")
        of = f"/{n_epochs}" if n_epochs else ""
        line = (f"epoch {epoch + 1}{of}  step {step}/{self.total_steps}  loss {loss:.5g}  lr {lr:.3g}  "
                f"{sp:.2f} steps/s  eta {human_time(eta)}")
        if self.bar is None:
            self.echo(line)
        elif self._log:
            self._log.write(line + "\n")
            self._log.flush()

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- records ------------------------------------------------------------------------------
    def record(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """Rows of metrics.csv (and TensorBoard scalars)."""
        if not self.active or self._writer is None:
            return
        for key, value in values.items():
            self._writer.writerow([step, epoch, key, repr(float(value))])
            if self._tb is not None:
                self._tb.add_scalar(key, float(value), step)
        self._csv.flush()

    def close(self) -> None:
        self.close_bar()
        for f in (self._csv, self._log):
            if f:
                f.close()
        if self._tb is not None:
            self._tb.close()
        self._csv = self._log = self._tb = self._writer = None
