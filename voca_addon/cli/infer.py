"""``infer AUDIO --out A.npz`` (or ``--features F.npz``): VOCA's animation as vertices and shape-key data.

With AUDIO the phone pass runs beside DeepSpeech and the lips' corrections are kept apart from VOCA's exact
weights (:mod:`.articulation`).

Contract: stdlib at import; numpy and the core when it runs.
"""
from __future__ import annotations

from pathlib import Path

from . import articulation, common
from ..core.errors import InputError, VocaError

FEATURES_NO_AUDIO = ("lip closures need the audio file, which --features runs do not have: leave out {flags} "
                     "(the result is then VOCA's exact motion, as with --no-closures), or run infer from AUDIO "
                     "instead of --features.")


def add_parser(sub) -> None:
    i = sub.add_parser("infer", help="audio or features → VOCA vertices and shape-key data (.npz)")
    i.add_argument("audio", nargs="?")
    i.add_argument("--features", metavar="NPZ", help="features from 'features' instead of audio")
    common.add_model_args(i, voca=True)
    common.add_audio_args(i)
    i.add_argument("--out", required=True, help="output .npz (vertices, weights, basis, bias, template, fps)")
    i.add_argument("--no-vertices", action="store_true", help="write only the compact shape-key form "
                   "(weights, basis, bias, template), not vertices [frames, 5023, 3] (3.6 MB per second)")
    articulation.add_args(i)            # --transcript, --alignment, --no-closures, --phonemes (stdlib)
    i.set_defaults(run=run)


def run(args) -> None:
    """AUDIO (or --features) → the animation ``.npz``; with AUDIO, the phone pass runs beside DeepSpeech and
    the lip corrections are kept apart from VOCA's exact weights (:mod:`.articulation`)."""
    from ..core import engine, outputs
    from ..core.flame import meshio
    from ..core.models import modelfiles
    from ..core.speech import audio
    if bool(args.audio) == bool(args.features):
        raise InputError("give either an AUDIO file or --features F.npz (exactly one)")
    common.check_fps(args.fps)
    condition = common.parse_style(args.style) if args.style else args.condition
    out = common.out_path(args, {"AUDIO": args.audio, "--features": args.features})
    if args.audio:
        audio.check_audio_path(args.audio)
    elif not Path(args.features).is_file():
        raise InputError(f"--features '{args.features}' was not found. Check the path.")
    plan = articulation.plan_from_args(args, args.audio, args.overwrite, no_audio=None if args.audio else
                                       FEATURES_NO_AUDIO)                  # refused before any computing
    phonemes = Path(plan.phonemes_out) if plan.phonemes_out else None
    outputs.check_distinct({"--out": out, "--phonemes": phonemes},
                           {"AUDIO": args.audio, "--alignment": getattr(args, "alignment", None)})
    prefix, pb, template_path = modelfiles.check_model_files(args.voca, args.deepspeech, args.template,
                                                             need_deepspeech=bool(args.audio))
    template = meshio.read_mesh(template_path).vertices
    clip = common.clip(args) if args.audio else None
    voca_model = modelfiles.load_voca(prefix, args.cache)
    template = engine.check_voca_inputs(voca_model, template, condition)      # refused before computing
    articulation.warn(plan.warnings)
    phones = articulation.PhonePass(plan, articulation.audio_source(args.audio, args.channel)) if args.audio else None
    with common.progress_printer() as progress:
        if args.features:
            feats = engine.SpeechFeatures.load_npz(args.features)
        else:
            feats = engine.speech_features(clip, modelfiles.load_deepspeech(pb, args.cache), args.fps,
                                           common.part(progress, 0.0, 0.9))
        anim = engine.animate_features(feats, voca_model, template, condition, progress=common.part(progress, 0.9, 0.95))
        track = phones.result() if phones is not None else None
        anim = articulation.articulate(anim, plan, track)
        with outputs.Staged([out] + ([phonemes] if phonemes else [])) as staged:
            try:
                engine.save_animation_npz(anim, staged.temp(out), with_vertices=not args.no_vertices,
                                          progress=common.part(progress, 0.95, 1.0), phones=track)
                if phonemes:
                    articulation.write_phonemes(track, str(staged.temp(phonemes)), args.audio)
            except OSError as exc:
                raise InputError(f"cannot write '{out}': {exc.strerror or exc}.") from None
            except VocaError as exc:
                raise type(exc)(staged.user_message(str(exc))) from None
            staged.commit()
    articulation.warn(track.warnings if track is not None else ())
    print(f"wrote {out}: {anim.num_frames} frames at {anim.fps:g} fps; {articulation.describe(plan, track, anim)}")
    if phonemes:
        print(f"wrote {phonemes}: {len(track.phones)} phones")


