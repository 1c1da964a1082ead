"""``features AUDIO --out F.npz``: DeepSpeech's logits and VOCA's windows of an audio file (.npz).

Contract: stdlib at import; numpy and the core when it runs.
"""
from __future__ import annotations

from . import common


def add_parser(sub) -> None:
    f = sub.add_parser("features", help="audio → DeepSpeech logits and VOCA windows (.npz)")
    f.add_argument("audio")
    common.add_model_args(f, voca=False)
    common.add_audio_args(f)
    f.add_argument("--out", required=True, help="output .npz (logits [T,29], windows [F,16,29], fps)")
    f.set_defaults(run=run)


def run(args) -> None:
    from ..core import engine
    from ..core.models import modelfiles
    from ..core.speech import audio
    common.check_fps(args.fps)
    out = common.out_path(args, {"AUDIO": args.audio})
    audio.check_audio_path(args.audio)
    pb = modelfiles.resolve_deepspeech(args.deepspeech)
    clip = common.clip(args)
    with common.progress_printer() as progress:
        feats = engine.speech_features(clip, modelfiles.load_deepspeech(pb, args.cache), args.fps, progress)
    common.save(out, feats.save_npz)
    print(f"wrote {out}")


