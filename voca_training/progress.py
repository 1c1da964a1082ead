"""Progress bar, training log and duration formatting for the training command.

* :class:`ProgressBar` — one line ``step 120/300 [#####.....] loss 2.31e-07 41.2 steps/s ETA 0:00:04``
  redrawn in place on a terminal (at most every :data:`REDRAW_S`), or printed as plain lines
  :data:`LINES_PER_RUN` times per run when the stream is not a terminal (logs, pytest);
  :meth:`ProgressBar.note` prints a message above the bar (validation, checkpoints).
* :class:`TrainingLog` — ``<out>/training_log.csv``, one row per step (validation columns filled at the
  end of each epoch); a resumed run first drops rows after the checkpoint it resumes from, so the file
  is always one continuous loss curve.

Contract: stdlib only; writes only the log file it is given.
"""
from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Optional, TextIO

BAR_WIDTH = 24             # characters
REDRAW_S = 0.2             # seconds between redraws on a terminal
LINES_PER_RUN = 10         # progress lines per run when not on a terminal
LOG_COLUMNS = ("step", "epoch", "loss", "reconstruction", "velocity", "acceleration", "regularizer",
               "learning_rate", "validation_loss", "validation_error_mm")


def format_duration(seconds: float) -> str:
    """``3725`` → ``'1:02:05'``; ``'?'`` when not finite."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Progress of steps ``start+1 .. end`` (global step numbers)."""

    def __init__(self, start: int, end: int, stream: TextIO, label: str = "step", unit: str = "steps"):
        self.start, self.end, self.stream, self.label, self.unit = int(start), int(end), stream, label, unit
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.began = time.perf_counter()
        self.last_draw = 0.0
        self.every = max(1, (self.end - self.start) // LINES_PER_RUN)
        self.shown = False

    def rate(self, step: int) -> float:
        """Steps per second so far in this run."""
        elapsed = time.perf_counter() - self.began
        return (step - self.start) / elapsed if elapsed > 0 else float("nan")

    def text(self, step: int, loss: Optional[float]) -> str:
        done = (step - self.start) / max(self.end - self.start, 1)
        fill = int(round(done * BAR_WIDTH))
        rate = self.rate(step)
        eta = (self.end - step) / rate if rate > 0 else float("nan")
        loss_text = f" loss {loss:.3e}" if loss is not None else ""
        width = len(str(self.end))
        return (f"{self.label} {step:>{width}}/{self.end} [{'#' * fill}{'.' * (BAR_WIDTH - fill)}]{loss_text} "
                f"{rate:.1f} {self.unit}/s ETA {format_duration(eta)}")

    def update(self, step: int, loss: Optional[float] = None) -> None:
        now = time.perf_counter()
        last = step >= self.end
        if self.tty:
            if last or now - self.last_draw >= REDRAW_S:
                self.stream.write("\r\033[K" + self.text(step, loss))
                self.stream.flush()
                self.last_draw, self.shown = now, True
        elif last or (step - self.start) % self.every == 0:
            self.stream.write(self.text(step, loss) + "\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        """A line above the bar."""
        self.stream.write(("\r\033[K" if self.tty and self.shown else "") + message + "\n")
        self.stream.flush()
        self.last_draw = 0.0

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


class TrainingLog:
    """``training_log.csv``: append rows; :meth:`truncate` to a step when resuming."""

    def __init__(self, path: os.PathLike):
        self.path = Path(path)

    def truncate(self, step: int) -> None:
        """Drop rows after ``step`` (a run that went further than its last checkpoint)."""
        if not self.path.is_file():
            return
        rows = [r for r in self.read() if int(r["step"]) <= step]
        self._write(rows, "w")

    def read(self) -> list:
        """The rows as dicts of strings."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def append(self, rows: list) -> None:
        self._write(rows, "a")

    def _write(self, rows: list, mode: str) -> None:
        new = mode == "w" or not self.path.is_file()
        with open(self.path, mode, newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
