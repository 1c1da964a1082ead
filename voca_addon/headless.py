"""Batch jobs in Blender without its window: animate, render, import and export sequences.

One entry, two ways to run it (the same argument parser and the same code path behind both)::

    blender -b [scene.blend] -P voca_addon/headless.py -- animate speech.wav --out scene.blend ...
    python -m voca_addon animate speech.wav --out scene.blend ...      # with the bpy module installed

(also ``python voca_addon/headless.py -- animate ...`` with a Python that has ``bpy``). Run as a script,
the file puts its package's parent folder on ``sys.path`` and imports the package from there, so it works
from a repository checkout and from an installed extension folder alike; arguments are those after
``--`` (Blender keeps its own before it).

Commands:

* ``animate AUDIO`` — open ``--scene IN.blend`` (or the file Blender opened, or an empty scene), pick the
  head (``--object``, else the active or only 5023-vertex mesh, else a new one from ``--template``), run
  :func:`voca_addon.blender.speech.pipeline.animate`, save ``--out`` atomically, and optionally render
  ``--render out.mp4`` (:func:`voca_addon.blender.exports.render.render_video`) and write ``--npz out.npz`` (the
  speech animation in ``infer``'s layout at the scene's rate). A head it creates gets VOCA's texture when
  ``texture_mesh.obj`` / ``.png`` lie next to the template or in the model folder, else a skin material
  (:mod:`voca_addon.blender.speech.material`); its sound and image are packed into the ``.blend``.
* ``import-sequence SOURCE`` — a folder of per-frame OBJ/PLY, a ``.npy`` or a ``.npz`` → shape keys on a
  new head (+ ``--audio``) in an empty scene at the sequence's rate, saved to ``--out``.
* ``export-pc2 SCENE.blend`` / ``export-obj SCENE.blend`` — the head's frames over the scene range.

Errors a user can cause (missing files, unreadable audio, missing output folder, a wrong template...)
print one line ``error: ...`` on stderr and exit with status 2, in both ways of running, with nothing
written: every argument is checked before Blender is touched, and files are written under a temporary
name and renamed into place only when complete.

Contract: importing this module imports neither ``bpy`` nor numpy (``python -m voca_addon --help`` stays
instant, and the CLI works without Blender); ``bpy`` is imported when a command runs.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

if __package__:
    from .core.errors import InputError
else:                                      # run as a script: the bootstrap at the bottom takes over
    InputError = None

DEFAULT_FPS = 60.0                         # a new scene's rate: VOCA's
COMMANDS = ("animate", "import-sequence", "export-pc2", "export-obj")


# ---------------------------------------------------------------------------- arguments

def add_commands(sub) -> None:
    """Add the Blender commands to an ``add_subparsers`` object (used here and by :mod:`voca_addon.cli`)."""
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
    a.add_argument("--channel", type=_channel, default=0, metavar="N|mix",
                   help="audio channel to use: 0 (VOCA's choice, default), 1, ... or 'mix' (mean of all)")
    a.add_argument("--overwrite", action="store_true", help="replace existing --out / --render files "
                   "(an old .blend is kept as .blend1); also allows --out to be the --scene file")
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
    from . import articulation_cli          # --transcript, --alignment, --no-closures, --phonemes
    articulation_cli.add_args(a)
    i = sub.add_parser("import-sequence", help="mesh sequence → shape keys in a .blend (needs Blender)")
    i.add_argument("source", help="folder of per-frame .obj/.ply, a .npy [F,V,3] or a .npz with 'vertices'")
    i.add_argument("--template", metavar="MESH", help="the sequence's neutral mesh (FLAME_sample.ply)")
    i.add_argument("--audio", metavar="WAV", help="sound to add at the first frame")
    i.add_argument("--fps", type=float, help="the sequence's frame rate, above 0 and at most 1000 (default: "
                   "the .npz's, else 60)")
    i.add_argument("--out", required=True, metavar="OUT.blend")
    i.add_argument("--overwrite", action="store_true", help="replace an existing --out (kept as .blend1)")
    articulation_cli.add_args(i)            # with --audio: lip closures from the sound (not twice)
    for name, what in (("export-pc2", "F.pc2"), ("export-obj", "FOLDER")):
        e = sub.add_parser(name, help=f"a .blend's animated head → {what} (needs Blender)")
        e.add_argument("blend", metavar="SCENE.blend")
        e.add_argument("--out", required=True, metavar=what)
        e.add_argument("--object", metavar="NAME", help="the head (default: the active or only animated mesh)")
        e.add_argument("--overwrite", action="store_true", help="replace an earlier export in " +
                       ("FOLDER" if name == "export-obj" else "F.pc2"))
    from . import retarget_cli              # retarget: VOCA's motion onto any head mesh (argparse at import)
    retarget_cli.add_parser(sub)


def _channel(text: str):
    from .cli import parse_channel          # one rule for every command
    return parse_channel(text)


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
    """The living-face flags as :class:`voca_addon.core.face.liveliness.LivelinessSettings`."""
    from .core.errors import InputError
    from .core.face.liveliness import LivelinessSettings, parse_blink_source
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


def build_parser(prog: str = "blender -b -P headless.py --") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    from .batch import add_parser as add_batch      # batch runs in Blender too (its Blender formats)
    add_batch(sub)
    return parser


# ---------------------------------------------------------------------------- checks (no Blender)

def _existing(path: Optional[str], what: str) -> Optional[str]:
    if path is not None and not os.path.exists(path):
        raise InputError(f"{what} '{path}' was not found. Check the path.")
    return None if path is None else os.path.abspath(path)


def _out_file(path: str, suffix: str, overwrite: bool = False, flag: str = "--out") -> str:
    """A destination checked before any work: extension, folder, writability, not existing (see
    :func:`voca_addon.core.outputs.check_output`)."""
    from .core import outputs
    return str(outputs.check_output(path, flag, (suffix,), overwrite))


def _positive_fps(fps: Optional[float]) -> None:
    from .cli import check_fps              # one fps range and wording for every command
    check_fps(fps)


def _check_render_args(args) -> None:
    """Parse --frames / --resolution in place; check --render's folder."""
    from .blender.exports.render import check_video_settings, parse_frames, parse_resolution  # needs bpy
    args.render = _out_file(args.render, ".mp4", args.overwrite, "--render") if args.render else None
    args.frames = parse_frames(args.frames) if args.frames else None
    args.resolution = parse_resolution(args.resolution)
    if args.render:
        check_video_settings(args.render, args.engine, args.resolution)
    if args.frames and not 0 <= args.frames[0] <= args.frames[1]:
        raise InputError(f"--frames {args.frames[0]}-{args.frames[1]}: the first frame must be ≥ 0 and "
                         "not after the last.")


def _import_bpy(command: str):
    try:
        import bpy
    except ImportError:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "headless.py")
        raise InputError(f"the {command} command needs Blender: run it with `blender -b -P {script} -- "
                         f"{command} ...` or install the bpy module (pip install bpy==5.0.1)") from None
    return bpy


# ---------------------------------------------------------------------------- Blender helpers

def _bpy_call(what: str, operator, **kwargs) -> None:
    """Run a bpy operator; its RuntimeError becomes a one-line user error."""
    try:
        result = operator(**kwargs)
    except RuntimeError as exc:
        detail = " ".join(str(exc).replace("Error:", "").split())
        raise InputError(f"{what}: {detail}") from None
    if "FINISHED" not in result:
        raise InputError(f"{what}: Blender cancelled the operation.")


def _open_scene(bpy, blend: Optional[str]):
    """Open ``blend``; else keep the file Blender was started with; else an empty scene."""
    if blend:
        if not blend.lower().endswith(".blend") or not os.path.isfile(blend):
            raise InputError(f"'{blend}' is not a .blend file. Choose a scene saved by Blender.")
        _bpy_call(f"cannot open '{blend}'", bpy.ops.wm.open_mainfile, filepath=blend, load_ui=False)
        return bpy.context.scene, False
    if bpy.data.filepath:
        return bpy.context.scene, False
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene, True


def set_scene_fps(scene, fps: float) -> None:
    """``scene.render.fps`` / ``fps_base`` for any rate (29.97 → 30 / 1.001)."""
    whole = max(1, int(round(fps)))
    scene.render.fps, scene.render.fps_base = whole, whole / float(fps)


def _save_copy(bpy, temp, shown: str) -> None:
    """Save the open file as a copy at ``temp``; errors name ``shown`` (the user's path). Blender's own line
    naming the temporary file is dropped (:func:`voca_addon.blender.exports.framewise.silenced`)."""
    from .blender.exports.framewise import silenced
    with silenced():
        _bpy_call(f"cannot save '{shown}'", bpy.ops.wm.save_as_mainfile, filepath=str(temp), copy=True,
                  check_existing=False)


def save_blend(bpy, path: str) -> None:
    """Save the open file as a copy at ``path``, atomically; an existing file is kept as ``.blend1``."""
    from pathlib import Path
    from .core import outputs
    outputs.write_exact(Path(path), lambda temp: _save_copy(bpy, temp, path))


def _print_progress():
    """The run's stages and every 10 % as plain lines on stdout (``[ 40%] speech recognition ...``)."""
    from .core.progress import ProgressPrinter
    return ProgressPrinter(sys.stdout, tty=False)


# ---------------------------------------------------------------------------- commands

def cmd_animate(args) -> None:
    """Check everything (arguments, destinations, model files), open the scene, animate, then write the
    ``.blend`` and the video together: both or neither."""
    from .cli import parse_style
    args.out = _out_file(args.out, ".blend", args.overwrite)
    args.npz = _out_file(args.npz, ".npz", args.overwrite, "--npz") if args.npz else None
    audio = _existing(args.audio, "Audio file")
    scene_in = _existing(args.scene, "Scene")
    _positive_fps(args.fps)
    condition = parse_style(args.style) if args.style else args.condition
    from . import articulation_cli as artic
    from .core.speech.audio import check_audio_path
    check_audio_path(audio)
    plan = artic.plan_from_args(args, audio, args.overwrite)         # refused before Blender is touched
    bpy = _import_bpy("animate")
    _check_render_args(args)
    _check_distinct(args, audio, scene_in or bpy.data.filepath or None, plan.phonemes_out)
    from .blender.speech import pipeline
    scene, new = _open_scene(bpy, scene_in)
    if args.fps or new:
        set_scene_fps(scene, args.fps or DEFAULT_FPS)
    from .blender.speech import heads
    head = heads.find_head(bpy.context, scene, args.object)
    settings = pipeline.AnimateSettings(
        audio_path=audio, voca_path=args.voca, deepspeech_path=args.deepspeech, template_path=args.template,
        condition=condition, emotion=args.emotion, emotion_source=args.emotion_source,
        strength=args.strength, start_frame=args.start_frame, mode=args.mode,
        emotion_neutral=_existing(args.emotion_neutral, "Neutral mesh"), channel=args.channel,
        head_rest=None if head is None else heads.rest_shape(head), liveliness=liveliness_settings(args),
        phones=_phone_request(plan, args))
    pipeline.validate_settings(settings)        # every missing model file at once; no template for a head
    if head is None:
        head = pipeline.ensure_head(bpy.context, args.template)
    pipeline.check_target(scene, head, settings)
    from .blender.speech import material  # a head the add-on made: VOCA's texture, else skin
    warning = material.dress_owned_head(head, args.template)
    if warning:
        print(f"warning: {warning}")
    progress = _print_progress()
    artic.warn(plan.warnings, sys.stdout)
    # the phones without closures (--no-closures --phonemes): our own pass, beside DeepSpeech
    phones = artic.PhonePass(plan, artic.audio_source(audio, args.channel)) if settings.phones is None else None
    result = pipeline.compute(settings, progress)      # with closures: the pipeline's phone pass (same rules)
    pipeline.clear_model_cache()        # one run per process: the networks' memory goes before Blender's grows
    track = phones.result() if phones is not None else (result.phones.track if result.phones else None)
    progress(1.0, "writing the animation into the scene")
    report = pipeline.apply(scene, head, result, settings)     # the head's correction keys: articulation_writer
    if phones is not None:
        artic.warn(track.warnings if track is not None else (), sys.stdout)
    _write_outputs(bpy, scene, args, head, report, artic.articulate(result.animation, plan, track), track,
                   plan, own_pass=phones is not None)


def _phone_request(plan, args):
    """The pipeline's phone request for ``plan`` (:mod:`voca_addon.blender.articulation.phones`): the
    alignment file, else the transcript (given, or AUDIO.txt beside the audio), else detection; None when
    the closures are off or cannot be made (no PocketSphinx: the plan's warning says so)."""
    if not plan.closures:
        return None
    from .blender.articulation.phones import PhoneRequest
    alignment = os.path.abspath(args.alignment) if getattr(args, "alignment", None) else None
    return PhoneRequest(alignment_path=alignment, transcript=plan.transcript)


def _check_distinct(args, audio: str, scene_file: Optional[str], phonemes: Optional[str] = None) -> None:
    from pathlib import Path
    from .core import outputs
    outputs.check_distinct({"--out": Path(args.out), "--render": Path(args.render) if args.render else None,
                            "--npz": Path(args.npz) if args.npz else None,
                            "--phonemes": Path(phonemes) if phonemes else None},
                           {"AUDIO": audio, "--scene": scene_file, "--alignment": args.alignment},
                           replaceable=("--scene",), overwrite=args.overwrite)


def _write_outputs(bpy, scene, args, head, report, anim, track=None, plan=None, own_pass=False) -> None:
    """Save ``--out``, write ``--npz`` / ``--phonemes`` and render ``--render`` under temporary names; rename
    them all only when all are done."""
    from pathlib import Path
    from . import articulation_cli as artic
    from .blender.exports import framewise, render
    from .blender import packing
    from .blender.speech import writer
    from .core import engine, outputs
    out, video = Path(args.out), Path(args.render) if args.render else None
    npz = Path(args.npz) if args.npz else None
    phonemes = Path(plan.phonemes_out) if plan is not None and plan.phonemes_out else None
    with outputs.Staged([out] + [p for p in (video, npz, phonemes) if p]) as staged:
        try:
            if video:
                render.frame_head(scene, *args.resolution, target=head)   # the saved scene gets the camera
            packing.pack_owned()                                           # sound + texture inside the .blend
            print(f"writing {out}", flush=True)
            _save_copy(bpy, staged.temp(out), args.out)
            if npz:
                print(f"writing {npz}", flush=True)
                engine.save_animation_npz(anim.resampled(writer.scene_fps(scene)), staged.temp(npz), phones=track)
            if phonemes:
                artic.write_phonemes(track, str(staged.temp(phonemes)))
            result = video and render.render_video(scene, staged.temp(video), frames=args.frames,
                                                   engine=args.engine, resolution=args.resolution, target=head,
                                                   progress=framewise.console_progress(), quiet=True)
        except InputError as exc:
            raise InputError(staged.user_message(str(exc))) from None
        staged.commit()
    print(f"wrote {out}: head '{head.name}', {report.summary()}"
          + (f"; {artic.describe(plan, track)}" if own_pass and track is not None else ""))
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


def _sequence_fps(source: str) -> Optional[float]:
    """The ``fps`` stored in a ``.npz`` sequence, or None (read without loading the frames)."""
    if not source.lower().endswith(".npz") or not os.path.isfile(source):
        return None
    from .core.animation.sources import check_rate, open_npz
    with open_npz(source) as archive:      # a truncated or damaged file: InputError naming it
        return check_rate(archive["fps"], f"the fps stored in '{source}'") if "fps" in archive else None


def cmd_import_sequence(args) -> None:
    """SOURCE (+ ``--audio``) → shape keys in a new ``.blend``. With ``--audio`` the lips close on its p/b/m
    (:mod:`voca_addon.articulation_cli`), unless the source already carries corrections (an ``.npz`` from
    ``infer`` / ``animate --npz`` / ``batch``, read in its shape-key form: never corrected twice)."""
    import dataclasses
    from pathlib import Path
    from . import articulation_cli as artic
    from .core import outputs
    args.out = _out_file(args.out, ".blend", args.overwrite)
    source = _existing(args.source, "Sequence")
    audio = _existing(args.audio, "Audio file")
    _positive_fps(args.fps)
    if audio:
        from .core.speech.audio import check_audio_path
        check_audio_path(audio)
    plan = artic.plan_from_args(args, audio, args.overwrite)
    outputs.check_distinct({"--out": Path(args.out), "--phonemes": plan.phonemes_out and Path(plan.phonemes_out)},
                           {"SOURCE": source, "--audio": audio, "--alignment": getattr(args, "alignment", None)})
    bpy = _import_bpy("import-sequence")
    from .blender.exports import sequences as sequence_io
    from .core.animation import npzextras
    from .core.models import modelfiles
    template = modelfiles.resolve_template(args.template)
    fps = args.fps or _sequence_fps(source) or DEFAULT_FPS
    anim = None
    if source.lower().endswith(".npz") and npzextras.is_animation_file(source):
        anim = npzextras.load_animation(source)      # shape-key form: corrections kept apart
        from .core.animation.sources import check_frames
        from .core.face.meshio import read_mesh
        picks = sorted({0, anim.num_frames // 2, anim.num_frames - 1})
        check_frames(anim.vertices(picks), read_mesh(template).vertices, source, template)   # units, shape
        anim = anim if fps == anim.fps else dataclasses.replace(anim, fps=float(fps))
    already = anim is not None and anim.corrections is not None
    track = None
    if already and not args.no_closures:             # never corrected twice: re-made from the file's phones
        track = npzextras.read_phones(source)
        print(f"note: '{os.path.basename(source)}' already carries lip corrections "
              f"({', '.join(anim.corrections.names)}); not corrected again"
              + ("" if track is not None else " (it holds no phones to re-make them from: imported without them)"))
        plan = dataclasses.replace(plan, closures=track is not None, phonemes_out=plan.phonemes_out)
    elif audio:
        artic.warn(plan.warnings, sys.stdout)
        track = artic.find_phones(plan, artic.audio_source(audio))
    phones = None
    if plan.closures and track is not None:
        from .blender.articulation.phones import PhoneOutcome
        phones = PhoneOutcome(track, "; ".join(track.warnings) or None)
    scene, _ = _open_scene(bpy, None)
    set_scene_fps(scene, fps)
    report = sequence_io.import_sequence(scene, source, template, audio, fps=fps, animation=anim, phones=phones)
    if plan.phonemes_out:
        with outputs.Staged([Path(args.out), Path(plan.phonemes_out)]) as staged:
            _save_copy(bpy, staged.temp(Path(args.out)), args.out)
            artic.write_phonemes(track, str(staged.temp(Path(plan.phonemes_out))))
            staged.commit()
    else:
        save_blend(bpy, args.out)
    print(f"wrote {args.out}: {report.frames_read} frames as {report.rank} shape keys on "
          f"'{report.obj.name}', frames {scene.frame_start}-{scene.frame_end} at {fps:g} fps"
          + "".join(f"; {line}" for line in report.articulation))
    if plan.phonemes_out:
        print(f"wrote {plan.phonemes_out}: {len(track.phones)} phones")
    if phones is None and track is not None:
        artic.warn(track.warnings, sys.stdout)
    if audio and not report.sound:
        from .blender import compat
        print(f"warning: {compat.NO_AUDIO_MESSAGE}")


def cmd_export(args) -> None:
    blend = _existing(args.blend, "Scene")
    from .core import outputs
    if args.command == "export-pc2":
        out = _out_file(args.out, ".pc2", args.overwrite)
    else:          # a folder: sequence_io refuses to replace an earlier export without --overwrite
        out = str(outputs.check_output(args.out, "--out", overwrite=args.overwrite, folder_output=True))
    bpy = _import_bpy(args.command)
    from .blender.exports import sequences as sequence_io
    scene, _ = _open_scene(bpy, blend)
    head = sequence_io.find_head(scene, args.object)
    if args.command == "export-pc2":
        sequence_io.export_pc2(scene, head, out)
        print(f"wrote {out}: '{head.name}', frames {scene.frame_start}-{scene.frame_end}")
    else:
        files = sequence_io.export_obj_sequence(scene, head, out, overwrite=args.overwrite)
        print(f"wrote {len(files)} OBJ files to {out}")


HANDLERS = {"animate": cmd_animate, "import-sequence": cmd_import_sequence,
            "export-pc2": cmd_export, "export-obj": cmd_export}


def cmd_retarget(args) -> None:
    from . import retarget_cli
    retarget_cli.run(args)


HANDLERS["retarget"] = cmd_retarget


def run(args):
    """Run a parsed command; user errors raise ``VocaError`` (the caller prints them). ``batch`` returns
    its exit status (:mod:`voca_addon.batch`)."""
    if args.command == "batch":
        from .batch import run as run_batch
        return run_batch(args)
    HANDLERS[args.command](args)


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` (default: the arguments after ``--``) and run; returns the exit status."""
    from .cli import run_guarded
    args = build_parser().parse_args(script_args(sys.argv) if argv is None else argv)
    return run_guarded(lambda: run(args), f"headless {args.command}")


def script_args(argv: List[str]) -> List[str]:
    """The script's own arguments: those after the first ``--`` (Blender's form), else all but argv[0]."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def _bootstrap() -> int:
    """Run as a script: import this file's package from its parent folder and call its ``main``.

    With the bpy *module* (``python headless.py``) the process then leaves through
    :func:`~voca_addon.blender.compat.exit_now`, as ``python -m voca_addon`` does: its teardown at exit
    crashes (4.2) or hangs (4.5) once the add-on's classes exist. In Blender itself that returns.
    """
    import importlib
    package_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(package_dir))
    package = os.path.basename(package_dir)
    status = importlib.import_module(package + ".headless").main()
    if "bpy" in sys.modules:
        importlib.import_module(package + ".blender.compat").exit_now(status)
    return status


if __name__ == "__main__":
    sys.exit(_bootstrap())
