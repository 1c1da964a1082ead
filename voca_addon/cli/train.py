"""``train --data DIR --out DIR``: train VOCA on VOCA-format data.

Training lives in the top-level package ``voca_training`` of the repository (never in the extension) and
needs TensorFlow 2; this module only checks that both are there and hands over.

Contract: stdlib at import.
"""
from __future__ import annotations

from ..core.errors import InputError


def add_parser(sub) -> None:
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
    t.set_defaults(run=run)


def run(args) -> None:
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
