"""``animate AUDIO --out OUT.blend``: a FLAME head animated from speech in a .blend (+ video, .npz, phones).

Two ways to run it, the same parser and code path behind both::

    blender -b [scene.blend] -P voca_addon/headless.py -- animate speech.wav --out scene.blend ...
    python -m voca_addon animate speech.wav --out scene.blend ...      # with the bpy module installed

It opens ``--scene IN.blend`` (or the file Blender opened, or an empty scene), picks the head (``--object``,
else the active or only 5023-vertex mesh, else a new one from ``--template``), runs
:func:`voca_addon.blender.speech.pipeline.compute` / ``apply`` (with lips that close unless
``--no-closures``), and writes ``--out`` and, if asked, ``--render out.mp4``
(:func:`voca_addon.blender.exports.render.render_video`), ``--npz out.npz`` (the speech animation in
``infer``'s layout at the scene's rate) and ``--phonemes``: all under temporary names, renamed together
(all or nothing). A head it creates gets VOCA's texture when ``texture_mesh.obj`` / ``.png`` lie next to
the template or in the model folder, else a skin material (:mod:`voca_addon.blender.speech.material`);
its sound and image are packed into the ``.blend``.

Errors a user can cause (missing files, unreadable audio, missing output folder, a wrong template...)
print one line ``error: ...`` and exit with status 2 with nothing written: every argument is checked
before Blender is touched.

Contract: importing this module imports neither ``bpy`` nor numpy; ``bpy`` is imported when it runs.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from . import articulation, common
from ..core.errors import InputError

DEFAULT_FPS = 60.0                         # a new scene's rate: VOCA's


def add_parser(sub) -> None:
    a = sub.add_parser("animate", help="audio → VOCA animation on a FLAME head in a .blend (needs Blender)")
    a.add_argument("audio")
    a.add_argument("--voca", metavar="PREFIX", help="VOCA checkpoint prefix or folder")
    a.add_argument("--deepspeech", metavar="PB", help="DeepSpeech v0.1.0 output_graph.pb")
    a.add_argument("--template", metavar="MESH", help="FLAME template .ply/.obj for a new head")
    style = a.add_mutually_exclusive_group()
    style.add_argument("--condition", type=int, default=3, help="speaking style 1..8 (default 3)")
    style.add_argument("--style", help="blend of styles, e.g. 1:0.5,4:0.5")
    a.add_argument("--emotion", help="emotion name to add (e.g. happy)")
    a.add_argument("--emotion-source", metavar="PATH", help="FLAME model .pkl, delta .npy/.npz or preset JSON")
    a.add_argument("--emotion-neutral", metavar="MESH", help="neutral mesh of sculpted emotion targets")
    a.add_argument("--strength", type=float, default=1.0, help="emotion strength 0..2 (default 1)")
    a.add_argument("--fps", type=float, help="scene frame rate, above 0 and at most 1000 (default: the "
                   "opened scene's, else 60)")
    a.add_argument("--channel", type=common.parse_channel, default=0, metavar="N|mix",
                   help="audio channel to use: 0 (VOCA's choice, default), 1, ... or 'mix' (mean of all)")
    a.add_argument("--overwrite", action="store_true", help="replace existing --out / --render / --npz / "
                   "--phonemes files (an old .blend is kept as .blend1); also allows --out to be the --scene file")
    a.add_argument("--start-frame", type=int, help="first frame of the animation (default: scene start)")
    a.add_argument("--mode", choices=("shape_keys", "per_frame"), default="shape_keys")
    a.add_argument("--scene", metavar="IN.blend", help="scene to open (default: an empty scene)")
    a.add_argument("--object", metavar="NAME", help="the head to animate (default: the active or only "
                   "5023-vertex mesh, else a new head from --template)")
    a.add_argument("--out", required=True, metavar="OUT.blend", help="where to save the scene")
    a.add_argument("--npz", metavar="OUT.npz", help="also write the speech animation as infer does "
                   "(vertices, basis, bias, weights, template, fps; at the scene's frame rate)")
    _add_render_args(a)
    _add_liveliness_args(a)
    articulation.add_args(a)             # --transcript, --alignment, --no-closures, --phonemes
    a.set_defaults(run=run)


def _add_liveliness_args(p) -> None:
    g = p.add_argument_group("living face (blinks, head motion, gaze, FLAME rig)")
    g.add_argument("--blinks", action="store_true", help="procedural eye blinks (shape: --blink-source, else "
                   "--flame-model's VOCA blink, else the head's key marked as blink)")
    g.add_argument("--blink-source", metavar="PATH", help="Blink shape: FLAME model .pkl, eyelid deltas .npy/.npz "
                   "[5023,3] (several joined by commas, summed) or a closed-eye mesh; implies --blinks")
    g.add_argument("--head-motion", type=float, default=0.0, metavar="STRENGTH",
                   help="speech-driven nods, turns and tilts: 0 off (default), 1 natural, up to 5")
    g.add_argument("--gaze", action="store_true", help="eye saccades and fixations")
    g.add_argument("--look-at", metavar="NAME", help="with --gaze: the object (an empty) in --scene to look at")
    g.add_argument("--flame-model", metavar="PKL", help="FLAME generic_model.pkl (the rig; VOCA's blink)")
    g.add_argument("--rig", action="store_true", help="a FLAME rig: armature at the head's joints, FLAME "
                   "skinning weights, pose correctives (needs --flame-model)")
    g.add_argument("--shape-sliders", type=int, default=0, metavar="N",
                   help="with --rig: the first N identity components as face-shape slider keys")
    g.add_argument("--seed", type=int, default=0, help="seed of the blinks, head motion and gaze (default 0)")


def liveliness_settings(args):
    """The living-face flags as :class:`voca_addon.core.living.liveliness.LivelinessSettings`."""
    from ..core.errors import InputError
    from ..core.living.liveliness import LivelinessSettings, parse_blink_source
    source = parse_blink_source(args.blink_source)
    if args.blink_source is not None and not source:
        raise InputError("--blink-source is empty: give a FLAME model (.pkl), eyelid deltas (.npy/.npz) or a "
                         "closed-eye mesh, or leave the flag out (with --blinks: the FLAME model or a marked key).")
    if args.seed < 0:                       # numpy's generators take no negative seed
        raise InputError(f"--seed {args.seed} is not a seed: give a whole number from 0.")
    return LivelinessSettings(blinks=bool(args.blinks or source), blink_source=source,
                              head_motion=args.head_motion, gaze=args.gaze, flame_model=args.flame_model,
                              rig=args.rig, shape_sliders=args.shape_sliders, seed=args.seed,
                              look_at=args.look_at)


def _add_render_args(p) -> None:
    p.add_argument("--render", metavar="OUT.mp4", help="also render an H.264/AAC video")
    p.add_argument("--frames", metavar="A-B", help="frames to render (default: the animation's)")
    p.add_argument("--engine", default="WORKBENCH", type=str.upper, choices=("WORKBENCH", "CYCLES"))
    p.add_argument("--resolution", default="640x480", metavar="WxH")


def _check_render_args(args) -> None:
    """Parse --frames / --resolution in place; check --render's folder."""
    from ..blender.exports.render import check_video_settings, parse_frames, parse_resolution  # needs bpy
    args.render = common.out_file(args.render, ".mp4", args.overwrite, "--render") if args.render else None
    args.frames = parse_frames(args.frames) if args.frames else None
    args.resolution = parse_resolution(args.resolution)
    if args.render:
        check_video_settings(args.render, args.engine, args.resolution)
    if args.frames and not 0 <= args.frames[0] <= args.frames[1]:
        raise InputError(f"--frames {args.frames[0]}-{args.frames[1]}: the first frame must be ≥ 0 and "
                         "not after the last.")


def run(args) -> None:
    """Check everything (arguments, destinations, model files), open the scene, animate, then write the
    ``.blend`` and the video together: both or neither."""
    args.out = common.out_file(args.out, ".blend", args.overwrite)
    args.npz = common.out_file(args.npz, ".npz", args.overwrite, "--npz") if args.npz else None
    audio = common.existing(args.audio, "Audio file")
    scene_in = common.existing(args.scene, "Scene")
    common.check_fps(args.fps)
    condition = common.parse_style(args.style) if args.style else args.condition
    from ..core.speech.audio import check_audio_path
    check_audio_path(audio)
    plan = articulation.plan_from_args(args, audio, args.overwrite)         # refused before Blender is touched
    bpy = common.import_bpy("animate")
    _check_render_args(args)
    _check_distinct(args, audio, scene_in or bpy.data.filepath or None, plan.phonemes_out)
    from ..blender import blendfile
    from ..blender.speech import pipeline
    scene, new = blendfile.open_scene(bpy, scene_in)
    if args.fps or new:
        blendfile.set_scene_fps(scene, args.fps or DEFAULT_FPS)
    from ..blender.speech import heads
    head = heads.find_head(bpy.context, scene, args.object)
    settings = pipeline.AnimateSettings(
        audio_path=audio, voca_path=args.voca, deepspeech_path=args.deepspeech, template_path=args.template,
        condition=condition, emotion=args.emotion, emotion_source=args.emotion_source,
        strength=args.strength, start_frame=args.start_frame, mode=args.mode,
        emotion_neutral=common.existing(args.emotion_neutral, "Neutral mesh"), channel=args.channel,
        head_rest=None if head is None else heads.rest_shape(head), liveliness=liveliness_settings(args),
        phones=_phone_request(plan, args))
    pipeline.validate_settings(settings)        # every missing model file at once; no template for a head
    if head is None:
        head = pipeline.ensure_head(bpy.context, args.template)
    pipeline.check_target(scene, head, settings)
    from ..blender.speech import material  # a head the add-on made: VOCA's texture, else skin
    warning = material.dress_owned_head(head, args.template)
    if warning:
        print(f"warning: {warning}")
    progress = common.print_progress()
    articulation.warn(plan.warnings, sys.stdout)
    # the phones without closures (--no-closures --phonemes): our own pass, beside DeepSpeech
    phones = articulation.PhonePass(plan, articulation.audio_source(audio, args.channel)) if settings.phones is None else None
    result = pipeline.compute(settings, progress)      # with closures: the pipeline's phone pass (same rules)
    pipeline.clear_model_cache()        # one run per process: the networks' memory goes before Blender's grows
    track = phones.result() if phones is not None else (result.phones.track if result.phones else None)
    progress(1.0, "writing the animation into the scene")
    report = pipeline.apply(scene, head, result, settings)     # the head's correction keys: articulation_writer
    if phones is not None:
        articulation.warn(track.warnings if track is not None else (), sys.stdout)
    _write_outputs(bpy, scene, args, head, report, articulation.articulate(result.animation, plan, track), track,
                   plan, own_pass=phones is not None)


def _phone_request(plan, args):
    """The pipeline's phone request for ``plan`` (:mod:`voca_addon.blender.articulation.phones`): the
    alignment file, else the transcript (given, or AUDIO.txt beside the audio), else detection; None when
    the closures are off or cannot be made (no PocketSphinx: the plan's warning says so)."""
    if not plan.closures:
        return None
    from ..blender.articulation.phones import PhoneRequest
    alignment = os.path.abspath(args.alignment) if getattr(args, "alignment", None) else None
    return PhoneRequest(alignment_path=alignment, transcript=plan.transcript)


def _check_distinct(args, audio: str, scene_file: Optional[str], phonemes: Optional[str] = None) -> None:
    from pathlib import Path
    from ..core import outputs
    outputs.check_distinct({"--out": Path(args.out), "--render": Path(args.render) if args.render else None,
                            "--npz": Path(args.npz) if args.npz else None,
                            "--phonemes": Path(phonemes) if phonemes else None},
                           {"AUDIO": audio, "--scene": scene_file, "--alignment": args.alignment},
                           replaceable=("--scene",), overwrite=args.overwrite)


def _write_outputs(bpy, scene, args, head, report, anim, track=None, plan=None, own_pass=False) -> None:
    """Save ``--out``, write ``--npz`` / ``--phonemes`` and render ``--render`` under temporary names; rename
    them all only when all are done."""
    from pathlib import Path
    from ..blender import blendfile
    from ..blender.exports import framewise, render
    from ..blender import packing
    from ..blender.speech import writer
    from ..core import engine, outputs
    out, video = Path(args.out), Path(args.render) if args.render else None
    npz = Path(args.npz) if args.npz else None
    phonemes = Path(plan.phonemes_out) if plan is not None and plan.phonemes_out else None
    with outputs.Staged([out] + [p for p in (video, npz, phonemes) if p]) as staged:
        try:
            if video:
                render.frame_head(scene, *args.resolution, target=head)   # the saved scene gets the camera
            packing.pack_owned()                                           # sound + texture inside the .blend
            print(f"writing {out}", flush=True)
            blendfile.save_copy(bpy, staged.temp(out), args.out)
            if npz:
                print(f"writing {npz}", flush=True)
                engine.save_animation_npz(anim.resampled(writer.scene_fps(scene)), staged.temp(npz), phones=track)
            if phonemes:
                articulation.write_phonemes(track, str(staged.temp(phonemes)), args.audio)
            result = video and render.render_video(scene, staged.temp(video), frames=args.frames,
                                                   engine=args.engine, resolution=args.resolution, target=head,
                                                   progress=framewise.console_progress(), quiet=True)
        except InputError as exc:
            raise InputError(staged.user_message(str(exc))) from None
        staged.commit()
    print(f"wrote {out}: head '{head.name}', {report.summary()}"
          + (f"; {articulation.describe(plan, track)}" if own_pass and track is not None else ""))
    if phonemes:
        print(f"wrote {phonemes}: {len(track.phones)} phones")
    if npz:
        print(f"wrote {npz}: the speech animation in infer's layout at {writer.scene_fps(scene):g} fps")
    if report.warning:
        print(f"warning: {report.warning}")
    if video:
        print(f"wrote {video}: frames {result.frames[0]}-{result.frames[1]}, {result.seconds:.1f} s "
              f"({result.seconds_per_frame:.2f} s/frame), {result.bytes} bytes, "
              f"audio {'yes' if result.has_audio else 'no'}")


