"""Command line: ``python -m voca_addon {features,infer,bench} ...``.

Works with neither ``bpy`` nor ``tensorflow`` importable. Every refused input exits with status 2
and one line on stderr (``error: ...``), without a traceback. An unexpected error (a bug) exits with
status 3 and one line naming a log file that holds the traceback (:mod:`voca_addon.core.errorlog`).

Contract: imports the core lazily per command so ``--help`` is instant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .core.errors import InputError, VocaError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3
EXIT_INTERRUPTED = 130


def parse_style(text: str) -> Dict[int, float]:
    """``"1:0.5,4:0.5"`` → {1: 0.5, 4: 0.5} (1-based conditions, weights ≥ 0)."""
    style: Dict[int, float] = {}
    for part in text.split(","):
        idx, sep, weight = part.partition(":")
        try:
            style[int(idx)] = style.get(int(idx), 0.0) + (float(weight) if sep else 1.0)
        except ValueError:
            raise InputError(f"--style '{text}' must look like 1:0.5,4:0.5 (condition:weight, ...)") from None
    return style


def _add_model_args(p: argparse.ArgumentParser, voca: bool) -> None:
    p.add_argument("--deepspeech", metavar="PB", help="DeepSpeech v0.1.0 output_graph.pb "
                   "(default: $VOCA_MODEL_DIR or ~/voca_models/output_graph.pb)")
    p.add_argument("--fps", type=float, default=60.0, help="output frame rate (VOCA was trained at 60)")
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
    f.add_argument("--out", required=True, help="output .npz (logits [T,29], windows [F,16,29], fps)")
    i = sub.add_parser("infer", help="audio or features → VOCA vertices and shape-key data (.npz)")
    i.add_argument("audio", nargs="?")
    i.add_argument("--features", metavar="NPZ", help="features from 'features' instead of audio")
    _add_model_args(i, voca=True)
    i.add_argument("--out", required=True, help="output .npz (vertices, weights, basis, bias, template, fps)")
    b = sub.add_parser("bench", help="speed and memory against TensorFlow (needs the dev environment)")
    b.add_argument("--seconds", default="10,60", help="speech lengths to time (default 10,60)")
    b.add_argument("--no-tf", action="store_true", help="skip the TensorFlow reference timings")
    b.add_argument("--work", metavar="DIR", help="where to build the random-weight models")
    b.add_argument("--no-blender", action="store_true", help="skip the Blender writing figures")
    _add_train_parser(sub)
    from . import batch                 # many clips per run (stdlib at import; numpy when it runs)
    batch.add_parser(sub)
    from . import headless              # the Blender commands (argparse only; bpy is imported on run)
    headless.add_commands(sub)
    return parser


def _out_path(text: str) -> Path:
    out = Path(text)
    if not out.parent.is_dir():
        raise InputError(f"cannot write '{out}': the folder '{out.parent}' does not exist")
    return out


def _cmd_features(args) -> None:
    from .core import engine
    from .core.models import modelfiles
    out = _out_path(args.out)
    ds = modelfiles.load_deepspeech(args.deepspeech, args.cache)
    engine.speech_features(args.audio, ds, args.fps).save_npz(out)
    print(f"wrote {out}")


def _cmd_infer(args) -> None:
    from .core import engine
    from .core.face import meshio
    from .core.models import modelfiles
    if bool(args.audio) == bool(args.features):
        raise InputError("give either an AUDIO file or --features F.npz (exactly one)")
    out = _out_path(args.out)
    condition = parse_style(args.style) if args.style else args.condition
    voca_model = modelfiles.load_voca(args.voca, args.cache)
    template = meshio.read_mesh(modelfiles.resolve_template(args.template)).vertices
    if args.features:
        windows = engine.SpeechFeatures.load_npz(args.features)
        fps = windows.fps
        windows = windows.windows
    else:
        ds = modelfiles.load_deepspeech(args.deepspeech, args.cache)
        feats = engine.speech_features(args.audio, ds, args.fps)
        windows, fps = feats.windows, feats.fps
    anim = engine.animate_windows(windows, voca_model, template, condition, fps)
    anim.save_npz(out)
    print(f"wrote {out}: {anim.num_frames} frames at {anim.fps:g} fps")


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
COMMANDS["train"] = _cmd_train


def _cmd_batch(args) -> int:
    """batch INPUT --out DIR: see :mod:`voca_addon.batch`; returns its exit status (some clips failed: 4)."""
    from . import batch
    return batch.run(args)


COMMANDS["batch"] = _cmd_batch


def run_guarded(call: Callable[[], None], context: str = "") -> int:
    """Run ``call`` and turn what it raises into one line on stderr and an exit status.

    A user error (``VocaError``, ``OSError``) prints ``error: ...`` and gives 2; Ctrl-C gives 130; any
    other exception is a bug: its traceback goes to a log file (:func:`errorlog.write_error_log`), one
    line names that file, and the status is 3. Success gives 0, or the int ``call`` returns (``batch``:
    4 when some clips failed). Used by :func:`main` and by :mod:`voca_addon.headless` (``blender -b -P``).
    """
    try:
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
