"""What every command shares: argument rules, the error guard and exit statuses, progress on stderr.

Contract: stdlib only at import (``--help`` stays instant); numpy and the core are imported inside the
functions that need them. Imports nothing else of :mod:`voca_addon.cli`.
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Dict, Optional

from ..core.errors import InputError, VocaError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130
FPS_MAX = 1000.0           # frames per second: every --fps's upper limit (above 0); = core.animation.sources'
                           # FPS_MAX for rates stored in files (kept here for a numpy-free --help; tested equal)
STYLE_FORMAT = "1:0.5,4:0.5 (condition:weight pairs separated by commas, each condition once)"


def parse_style(text: str) -> Dict[int, float]:
    """``"1:0.5,4:0.5"`` → {1: 0.5, 4: 0.5}: 1-based conditions, finite weights ≥ 0, at least one > 0.

    Every part must be ``condition:weight``; a missing weight, a repeated condition or anything else
    is refused (``1:0.5,4`` is an error, not ``4: 1.0``).
    """
    style: Dict[int, float] = {}
    for part in str(text).split(","):
        idx, sep, weight = (t.strip() for t in part.partition(":"))
        try:
            index, value = int(idx), float(weight)
        except ValueError:
            index = value = None
        if not sep or index is None or index < 1 or not math.isfinite(value) or value < 0:
            raise InputError(f"--style '{text}': '{part.strip()}' is not condition:weight with a condition "
                             f"from 1 and a weight ≥ 0; write it like {STYLE_FORMAT}.")
        if index in style:
            raise InputError(f"--style '{text}' names condition {index} twice; write it like {STYLE_FORMAT}.")
        style[index] = value
    if not sum(style.values()) > 0:
        raise InputError(f"--style '{text}' has no positive weight; give at least one condition a weight > 0.")
    return style


def check_fps(fps: Optional[float]) -> None:
    """One frame-rate rule for every command: above 0 and at most :data:`FPS_MAX` (None: not given);
    the same rule as a rate stored in a file (:func:`voca_addon.core.animation.sources.check_rate`)."""
    if fps is not None:
        from ..core.animation.sources import check_rate  # numpy: imported when a rate is checked
        check_rate(fps, "--fps")


def parse_channel(text: str):
    """``--channel``: a channel number from 0 (VOCA uses 0) or ``mix`` (the mean of all channels)."""
    text = str(text).strip().lower()
    if text == "mix":
        return "mix"
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"'{text}' is not a channel: give a number from 0 or 'mix'")


def add_audio_args(p: argparse.ArgumentParser) -> None:
    """--channel, shared by every command that reads speech."""
    p.add_argument("--channel", type=parse_channel, default=0, metavar="N|mix",
                   help="audio channel to use: 0 (VOCA's choice, default), 1, ... or 'mix' (mean of all)")


def add_model_args(p: argparse.ArgumentParser, voca: bool) -> None:
    p.add_argument("--deepspeech", metavar="PB", help="DeepSpeech v0.1.0 output_graph.pb "
                   "(default: $VOCA_MODEL_DIR or ~/voca_models/output_graph.pb)")
    p.add_argument("--fps", type=float, default=60.0, help=f"output frame rate, above 0 and at most "
                   f"{FPS_MAX:g} (VOCA was trained at 60)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--cache", metavar="DIR", help="model cache folder (default ~/.cache/voca_addon)")
    if voca:
        p.add_argument("--voca", metavar="CKPT_PREFIX", help="VOCA checkpoint prefix or folder "
                       "(default: $VOCA_MODEL_DIR or ~/voca_models/gstep_52280.model)")
        p.add_argument("--template", metavar="MESH", help="FLAME template .ply/.obj "
                       "(default: ~/voca_models/FLAME_sample.ply)")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--condition", type=int, default=3, help="speaking style 1..8 (run_voca.py's "
                       "--condition_idx; default 3)")
        g.add_argument("--style", help="blend of styles, e.g. 1:0.5,4:0.5")


def out_path(args, inputs) -> Path:
    """``--out`` checked before any computing: exactly ``.npz``, writable, not existing (or --overwrite)."""
    from ..core import outputs
    out = outputs.check_output(args.out, "--out", (".npz",), args.overwrite)
    outputs.check_distinct({"--out": out}, inputs)
    return out


def clip(args):
    """The audio file's chosen channel (``--channel``), checked before any model is loaded.

    A long plain WAV is checked block by block and handed on as a ``WavStream`` (the engine reads it
    again block by block: memory does not grow with its length); anything else is decoded here.
    """
    from ..core.speech import audio, wavstream
    stream = wavstream.open_wav(args.audio, args.channel)
    if stream is not None:
        stream.check()
        return stream
    return audio.select_channel(audio.load_audio(args.audio), args.channel)


def save(out: Path, save) -> None:
    from ..core import outputs
    outputs.write_exact(out, save)


class progress_printer:
    """``with progress_printer() as p``: a :class:`~voca_addon.core.progress.ProgressPrinter` on stderr (a bar with
    the time left on a terminal, plain lines otherwise), its line ended on exit."""

    def __enter__(self):
        from ..core.progress import ProgressPrinter
        self.printer = ProgressPrinter()
        return self.printer

    def __exit__(self, *exc):
        self.printer.close()


def part(progress, lo: float, hi: float):
    """A stage's ``progress(f, stage)`` mapped onto ``lo .. hi`` of the whole run."""
    return lambda f, stage: progress(lo + (hi - lo) * f, stage)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The add-on's own warnings (e.g. a non-release DeepSpeech graph) as one ``warning: ...`` line."""
    if (category.__module__ or "").startswith("voca_addon"):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def interruptible() -> None:
    """Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` for the whole command, whoever set its handler before.

    A job started with ``&`` from a script inherits SIGINT *ignored* (POSIX shells without job control), and
    Blender (``blender -b -P headless.py``) installs a C handler that only sets a break flag: in both a
    ``kill -INT`` was lost and the command ran to its end with exit 0. Main thread only.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _raise_disk_full(e: OSError, destinations) -> None:
    """An OSError of a full disk (or quota, or file size limit) that names no file (a write's error never
    does) as an InputError naming the run's destinations; any other OSError is left to the caller."""
    if e.errno not in DISK_FULL or e.filename or not destinations:
        return
    names = ", ".join(f"'{d}'" for d in destinations)
    raise InputError(f"cannot write {names}: {e.strerror or 'the disk is full'}. No partial file was left; "
                     "free some space there or choose another folder.") from None


def run_guarded(call: Callable[[], None], context: str = "") -> int:
    """Run ``call`` and turn what it raises into one line on stderr and an exit status.

    Destinations checked during ``call`` are claimed for it (:mod:`voca_addon.core.claims`) and released
    when it ends, however it ends. A user error (``VocaError``, ``OSError``) prints ``error: ...`` and
    gives 2; Ctrl-C gives 130; any other exception is a bug: its traceback goes to a log file
    (:func:`errorlog.write_error_log`), one line names that file, and the status is 3. Success gives 0, or the int ``call`` returns (``batch``:
    4 when some clips failed). Used by :func:`main` and by :mod:`voca_addon.cli.animate` (``blender -b -P``).
    """
    from ..core import claims
    interruptible()
    try:
        with warnings.catch_warnings(), claims.claiming():   # outputs claimed for this run, released after
            warnings.showwarning = show_warning     # the add-on's warnings as one line each
            try:
                status = call()
            except OSError as e:
                _raise_disk_full(e, claims.held())
                raise
    except (VocaError, OSError) as e:   # OSError: unwritable output, unreadable input no reader classified
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:              # noqa: BLE001 - the last guard: anything else is a bug
        from ..core import errorlog
        log = errorlog.write_error_log(e, context or " ".join(sys.argv))
        print(f"error: {errorlog.one_line(e, log)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    return status if isinstance(status, int) else 0     # a command may return its own status (batch)




def existing(path: Optional[str], what: str) -> Optional[str]:
    if path is not None and not os.path.exists(path):
        raise InputError(f"{what} '{path}' was not found. Check the path.")
    return None if path is None else os.path.abspath(path)


def out_file(path: str, suffix: str, overwrite: bool = False, flag: str = "--out") -> str:
    """A destination checked before any work: extension, folder, writability, not existing (see
    :func:`voca_addon.core.outputs.check_output`)."""
    from ..core import outputs
    return str(outputs.check_output(path, flag, (suffix,), overwrite))


def import_bpy(command: str):
    """The ``bpy`` module, or InputError saying how to run ``command`` with Blender.

    Ctrl-C is held back while it loads (main thread): an interrupt inside Blender's own start left a
    half-started Blender whose exit crashed (exit 139, the run's claim files left behind). While the import
    runs, SIGINT is only noted; once it is done the command's own handler is back (Blender's start may set
    one of its own) and a noted Ctrl-C raises ``KeyboardInterrupt``: the command ends as any interrupted one.
    """
    main = threading.current_thread() is threading.main_thread()
    noted: list = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum)) if main else None
    try:
        import bpy
    except ImportError:
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "headless.py")
        raise InputError(f"the {command} command needs Blender: run it with `blender -b -P {script} -- "
                         f"{command} ...` or install the bpy module (pip install bpy==5.0.1)") from None
    finally:
        if main:
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if noted:
        raise KeyboardInterrupt
    return bpy


def print_progress():
    """The run's stages and every 10 % as plain lines on stdout (``[ 40%] speech recognition ...``)."""
    from ..core.progress import ProgressPrinter
    return ProgressPrinter(sys.stdout, tty=False)
