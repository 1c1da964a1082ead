"""Command line: ``python -m voca_addon {features,infer,bench} ...``.

Works with neither ``bpy`` nor ``tensorflow`` importable. Every refused input exits with status 2
and one line on stderr (``error: ...``), without a traceback. An unexpected error (a bug) exits with
status 3 and one line naming a log file that holds the traceback (:mod:`voca_addon.core.errorlog`).

Contract: imports the core lazily per command so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .core.errors import InputError, VocaError

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
        from .core.animation.sources import check_rate      # numpy: imported when a rate is checked
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
    """--channel and --fps, shared by every command that reads speech (here and in headless.py)."""
    p.add_argument("--channel", type=parse_channel, default=0, metavar="N|mix",
                   help="audio channel to use: 0 (VOCA's choice, default), 1, ... or 'mix' (mean of all)")


def _add_model_args(p: argparse.ArgumentParser, voca: bool) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voca_addon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="audio → DeepSpeech logits and VOCA windows (.npz)")
    f.add_argument("audio")
    _add_model_args(f, voca=False)
    add_audio_args(f)
    f.add_argument("--out", required=True, help="output .npz (logits [T,29], windows [F,16,29], fps)")
    i = sub.add_parser("infer", help="audio or features → VOCA vertices and shape-key data (.npz)")
    i.add_argument("audio", nargs="?")
    i.add_argument("--features", metavar="NPZ", help="features from 'features' instead of audio")
    _add_model_args(i, voca=True)
    add_audio_args(i)
    i.add_argument("--out", required=True, help="output .npz (vertices, weights, basis, bias, template, fps)")
    i.add_argument("--no-vertices", action="store_true", help="write only the compact shape-key form "
                   "(weights, basis, bias, template), not vertices [frames, 5023, 3] (3.6 MB per second)")
    from . import articulation_cli      # --transcript, --alignment, --no-closures, --phonemes (stdlib)
    articulation_cli.add_args(i)
    b = sub.add_parser("bench", help="speed and memory against TensorFlow (needs the dev environment)")
    b.add_argument("--seconds", default="10,60", help="speech lengths to time (default 10,60)")
    b.add_argument("--no-tf", action="store_true", help="skip the TensorFlow reference timings")
    b.add_argument("--work", metavar="DIR", help="where to build the random-weight models")
    b.add_argument("--no-blender", action="store_true", help="skip the Blender writing figures")
    _add_train_parser(sub)
    from . import batch                 # many clips per run (stdlib at import; numpy when it runs)
    batch.add_parser(sub)
    from . import models_cli            # models fetch / install / status (stdlib at import)
    models_cli.add_parser(sub)
    from . import phonemes_cli          # phonemes AUDIO --out OUT (stdlib at import)
    phonemes_cli.add_parser(sub)
    from . import headless              # the Blender commands (argparse only; bpy is imported on run)
    headless.add_commands(sub)
    return parser


def _out_path(args, inputs) -> Path:
    """``--out`` checked before any computing: exactly ``.npz``, writable, not existing (or --overwrite)."""
    from .core import outputs
    out = outputs.check_output(args.out, "--out", (".npz",), args.overwrite)
    outputs.check_distinct({"--out": out}, inputs)
    return out


def _clip(args):
    """The audio file's chosen channel (``--channel``), checked before any model is loaded.

    A long plain WAV is checked block by block and handed on as a ``WavStream`` (the engine reads it
    again block by block: memory does not grow with its length); anything else is decoded here.
    """
    from .core.speech import audio, wavstream
    stream = wavstream.open_wav(args.audio, args.channel)
    if stream is not None:
        stream.check()
        return stream
    return audio.select_channel(audio.load_audio(args.audio), args.channel)


def _save(out: Path, save) -> None:
    from .core import outputs
    outputs.write_exact(out, save)


def _cmd_features(args) -> None:
    from .core import engine
    from .core.models import modelfiles
    from .core.speech import audio
    check_fps(args.fps)
    out = _out_path(args, {"AUDIO": args.audio})
    audio.check_audio_path(args.audio)
    pb = modelfiles.resolve_deepspeech(args.deepspeech)
    clip = _clip(args)
    with _progress() as progress:
        feats = engine.speech_features(clip, modelfiles.load_deepspeech(pb, args.cache), args.fps, progress)
    _save(out, feats.save_npz)
    print(f"wrote {out}")


def _cmd_infer(args) -> None:
    """AUDIO (or --features) → the animation ``.npz``; with AUDIO, the phone pass runs beside DeepSpeech and
    the lip corrections are kept apart from VOCA's exact weights (:mod:`voca_addon.articulation_cli`)."""
    from . import articulation_cli as artic
    from .core import engine, outputs
    from .core.face import meshio
    from .core.models import modelfiles
    from .core.speech import audio
    if bool(args.audio) == bool(args.features):
        raise InputError("give either an AUDIO file or --features F.npz (exactly one)")
    check_fps(args.fps)
    condition = parse_style(args.style) if args.style else args.condition
    out = _out_path(args, {"AUDIO": args.audio, "--features": args.features})
    if args.audio:
        audio.check_audio_path(args.audio)
    elif not Path(args.features).is_file():
        raise InputError(f"--features '{args.features}' was not found. Check the path.")
    plan = artic.plan_from_args(args, args.audio, args.overwrite)          # refused before any computing
    phonemes = Path(plan.phonemes_out) if plan.phonemes_out else None
    outputs.check_distinct({"--out": out, "--phonemes": phonemes},
                           {"AUDIO": args.audio, "--alignment": getattr(args, "alignment", None)})
    prefix, pb, template_path = modelfiles.check_model_files(args.voca, args.deepspeech, args.template,
                                                             need_deepspeech=bool(args.audio))
    template = meshio.read_mesh(template_path).vertices
    clip = _clip(args) if args.audio else None
    voca_model = modelfiles.load_voca(prefix, args.cache)
    template = engine.check_voca_inputs(voca_model, template, condition)      # refused before computing
    artic.warn(plan.warnings)
    phones = artic.PhonePass(plan, artic.audio_source(args.audio, args.channel)) if args.audio else None
    with _progress() as progress:
        if args.features:
            feats = engine.SpeechFeatures.load_npz(args.features)
        else:
            feats = engine.speech_features(clip, modelfiles.load_deepspeech(pb, args.cache), args.fps,
                                           _part(progress, 0.0, 0.9))
        anim = engine.animate_features(feats, voca_model, template, condition, progress=_part(progress, 0.9, 0.95))
        track = phones.result() if phones is not None else None
        anim = artic.articulate(anim, plan, track)
        with outputs.Staged([out] + ([phonemes] if phonemes else [])) as staged:
            try:
                engine.save_animation_npz(anim, staged.temp(out), with_vertices=not args.no_vertices,
                                          progress=_part(progress, 0.95, 1.0), phones=track)
                if phonemes:
                    artic.write_phonemes(track, str(staged.temp(phonemes)))
            except OSError as exc:
                raise InputError(f"cannot write '{out}': {exc.strerror or exc}.") from None
            except VocaError as exc:
                raise type(exc)(staged.user_message(str(exc))) from None
            staged.commit()
    artic.warn(track.warnings if track is not None else ())
    print(f"wrote {out}: {anim.num_frames} frames at {anim.fps:g} fps; {artic.describe(plan, track, anim)}")
    if phonemes:
        print(f"wrote {phonemes}: {len(track.phones)} phones")


class _progress:
    """``with _progress() as p``: a :class:`~voca_addon.core.progress.ProgressPrinter` on stderr (a bar with
    the time left on a terminal, plain lines otherwise), its line ended on exit."""

    def __enter__(self):
        from .core.progress import ProgressPrinter
        self.printer = ProgressPrinter()
        return self.printer

    def __exit__(self, *exc):
        self.printer.close()


def _part(progress, lo: float, hi: float):
    """A stage's ``progress(f, stage)`` mapped onto ``lo .. hi`` of the whole run."""
    return lambda f, stage: progress(lo + (hi - lo) * f, stage)


def _cmd_bench(args) -> None:
    from . import bench
    bench.main([float(s) for s in args.seconds.split(",")], with_tf=not args.no_tf, work=args.work,
               blender=not args.no_blender)


def _add_train_parser(sub) -> None:
    t = sub.add_parser("train", help="train VOCA on VOCA-format data (TensorFlow 2, repository checkout only)")
    t.add_argument("--config", metavar="CFG", help="training config .ini (default: VOCA's settings; see "
                   "voca_training/configs/)")
    t.add_argument("--data", required=True, metavar="DIR", help="folder with data_verts.npy, "
                   "raw_audio_fitted.pkl (or audio/), templates.pkl, subj_seq_to_idx.pkl")
    t.add_argument("--deepspeech", metavar="PB", help="DeepSpeech v0.1.0 output_graph.pb "
                   "(default: $VOCA_MODEL_DIR or ~/voca_models/output_graph.pb)")
    t.add_argument("--out", required=True, metavar="DIR", help="folder for checkpoints, log and config")
    t.add_argument("--steps", type=int, help="train this many more steps (default: up to epoch_num epochs)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--init", metavar="PREFIX", help="start from this checkpoint's weights (e.g. the official "
                   "gstep_52280.model) with a fresh optimizer")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--cache", metavar="DIR", help="model and feature cache folder (default ~/.cache/voca_addon)")
    t.add_argument("--threads", type=int, default=0, help="CPU threads for TensorFlow (default: all)")


def _cmd_train(args) -> None:
    """Training lives in the top-level package ``voca_training`` (never in the extension) and needs TF 2."""
    import importlib.util
    try:
        from voca_training import train as training  # imports TensorFlow only after the input checks
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "voca_training":
            raise
        raise InputError("training needs the 'voca_training' package of the repository: run "
                         "'python -m voca_addon train' from a clone of the project (it is not part of the "
                         "Blender extension)") from None
    if importlib.util.find_spec("tensorflow") is None:
        raise InputError("training needs TensorFlow 2, which is not installed: pip install tensorflow "
                         "(the add-on itself never needs it)")
    training.train(args.data, args.deepspeech, args.out, config=args.config, steps=args.steps, init=args.init,
                   resume=args.resume, cache=args.cache, threads=args.threads)


def _cmd_blender(args) -> None:
    """animate / import-sequence / export-pc2 / export-obj: see :mod:`voca_addon.headless`."""
    from . import headless
    headless.run(args)


COMMANDS = {"features": _cmd_features, "infer": _cmd_infer, "bench": _cmd_bench}
COMMANDS.update({name: _cmd_blender for name in ("animate", "import-sequence", "export-pc2", "export-obj")})
COMMANDS["retarget"] = _cmd_blender     # voca_addon.retarget_cli, through headless.HANDLERS
COMMANDS["train"] = _cmd_train


def _cmd_models(args) -> int:
    """models fetch / install / status: see :mod:`voca_addon.models_cli` (status: 1 when a file is missing)."""
    from . import models_cli
    return models_cli.run(args)


COMMANDS["models"] = _cmd_models


def _cmd_batch(args) -> int:
    """batch INPUT --out DIR: see :mod:`voca_addon.batch`; returns its exit status (some clips failed: 4)."""
    from . import batch
    return batch.run(args)


COMMANDS["batch"] = _cmd_batch


def _cmd_phonemes(args) -> None:
    """phonemes AUDIO --out OUT: see :mod:`voca_addon.phonemes_cli`."""
    from . import phonemes_cli
    phonemes_cli.run(args)


COMMANDS["phonemes"] = _cmd_phonemes


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The add-on's own warnings (e.g. a non-release DeepSpeech graph) as one ``warning: ...`` line."""
    if (category.__module__ or "").startswith("voca_addon"):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def _interruptible() -> None:
    """Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` for the whole command, whoever set its handler before.

    A job started with ``&`` from a script inherits SIGINT *ignored* (POSIX shells without job control), and
    Blender (``blender -b -P headless.py``) installs a C handler that only sets a break flag: in both a
    ``kill -INT`` was lost and the command ran to its end with exit 0. Main thread only.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_guarded(call: Callable[[], None], context: str = "") -> int:
    """Run ``call`` and turn what it raises into one line on stderr and an exit status.

    Destinations checked during ``call`` are claimed for it (:mod:`voca_addon.core.claims`) and released
    when it ends, however it ends. A user error (``VocaError``, ``OSError``) prints ``error: ...`` and
    gives 2; Ctrl-C gives 130; any other exception is a bug: its traceback goes to a log file
    (:func:`errorlog.write_error_log`), one line names that file, and the status is 3. Success gives 0, or the int ``call`` returns (``batch``:
    4 when some clips failed). Used by :func:`main` and by :mod:`voca_addon.headless` (``blender -b -P``).
    """
    from .core import claims
    _interruptible()
    try:
        with warnings.catch_warnings(), claims.claiming():   # outputs claimed for this run, released after
            warnings.showwarning = _show_warning     # the add-on's warnings as one line each
            status = call()
    except (VocaError, OSError) as e:   # OSError: unwritable output, unreadable input no reader classified
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:              # noqa: BLE001 - the last guard: anything else is a bug
        from .core import errorlog
        log = errorlog.write_error_log(e, context or " ".join(sys.argv))
        print(f"error: {errorlog.one_line(e, log)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    return status if isinstance(status, int) else 0     # a command may return its own status (batch)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: COMMANDS[args.command](args), f"python -m voca_addon {args.command}")
