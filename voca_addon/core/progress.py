"""Progress for the command line: a bar with the time left on a terminal, plain lines otherwise.

:class:`ProgressPrinter` is the ``progress(fraction, stage)`` callback the engine and the downloads
take. On a terminal (``stream.isatty()``) it redraws one line per stage in place::

    speech recognition (DeepSpeech)  [##########··········]  50%  1:05 left

ending each stage's line when the next stage starts, so the stages stay visible. Otherwise (a log
file, a pipe, CI) it writes a plain line when a stage starts and each time the overall fraction passes
another ``line_step`` (10 %)::

    [ 50%] speech recognition (DeepSpeech), about 1:05 left

The time left is ``elapsed · (1 − f) / f`` over the whole run, shown once 2 % and 1 s have passed.
Redraws are rate-limited (``min_interval``), so calling it after every step of a loop is cheap.

Contract: stdlib only; one instance per run, called from one thread at a time.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

from . import faults

BAR_WIDTH = 20          # characters of the bar
LINE_STEP = 0.1         # plain mode: a line per 10 % of the run
MIN_INTERVAL = 0.1      # s between terminal redraws
MIN_ETA_FRACTION = 0.02  # no time-left estimate before 2 % ...
MIN_ETA_SECONDS = 1.0    # ... and 1 s


def format_duration(seconds: float) -> str:
    """``75`` → ``'1:15'``, ``3725`` → ``'1:02:05'`` (rounded up to whole seconds)."""
    total = int(-(-max(0.0, seconds) // 1))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressPrinter:
    """``progress(fraction, stage)`` → terminal bar or plain lines on ``stream`` (default stderr).

    Parameters
    ----------
    stream : text stream or None
        Where to write (default ``sys.stderr``).
    tty : bool or None
        Force the terminal (True) or plain (False) form; default ``stream.isatty()``.
    clock : callable() -> float
        Seconds (monotonic); replaceable so the arithmetic can be checked.
    """

    def __init__(self, stream: Optional[TextIO] = None, tty: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic, line_step: float = LINE_STEP,
                 min_interval: float = MIN_INTERVAL):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(tty) if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock, self.line_step, self.min_interval = clock, line_step, min_interval
        self._start = clock()
        self._stage: Optional[str] = None
        self._next_line = line_step
        self._last_draw = -float("inf")
        self._open_line = False

    def eta(self, fraction: float) -> Optional[float]:
        """Seconds left, or None while too little is done to say."""
        elapsed = self.clock() - self._start
        if fraction < MIN_ETA_FRACTION or elapsed < MIN_ETA_SECONDS or fraction >= 1:
            return None if fraction < 1 else 0.0
        return elapsed * (1 - fraction) / fraction

    def __call__(self, fraction: float, stage: str) -> None:
        faults.point("progress")
        fraction = min(1.0, max(0.0, float(fraction)))
        new_stage = stage != self._stage
        self._stage = stage
        if self.tty:
            self._draw_bar(fraction, stage, new_stage)
        else:
            self._plain_line(fraction, stage, new_stage)

    def _draw_bar(self, fraction: float, stage: str, new_stage: bool) -> None:
        now = self.clock()
        if not new_stage and now - self._last_draw < self.min_interval and fraction < 1:
            return
        if new_stage and self._open_line:
            self.stream.write("\n")
        filled = int(round(BAR_WIDTH * fraction))
        eta = self.eta(fraction)
        left = f"  {format_duration(eta)} left" if eta else ""
        self.stream.write(f"\r{stage:<32} [{'#' * filled}{'·' * (BAR_WIDTH - filled)}] "
                          f"{fraction * 100:3.0f}%{left}\x1b[K")
        self.stream.flush()
        self._open_line, self._last_draw = True, now

    def _plain_line(self, fraction: float, stage: str, new_stage: bool) -> None:
        if not new_stage and fraction < self._next_line:
            return
        while self._next_line <= fraction:
            self._next_line += self.line_step
        eta = self.eta(fraction)
        left = f", about {format_duration(eta)} left" if eta else ""
        self.stream.write(f"[{fraction * 100:3.0f}%] {stage}{left}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the terminal line (call once when the run is over, also after an error)."""
        if self.tty and self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
