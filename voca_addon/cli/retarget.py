"""``retarget``: VOCA's motion from a FLAME sequence onto any head mesh, into a .blend.

    python -m voca_addon retarget SOURCE --target MESH --landmarks (PAIRS | auto) --out OUT.blend
        [--guess-landmarks PAIRS_OUT.txt] [--target-keys FOLDER] [--curves OUT.csv|OUT.json]
        [--template FLAME.ply] [--audio WAV [--channel N|mix] [--transcript T | --alignment FILE]
        [--no-closures] [--phonemes OUT]] [--fps F] [--overwrite]

(and the same after ``blender -b -P voca_addon/headless.py --``). SOURCE: an ``infer`` result or any
``.npz``/``.npy`` with ``vertices`` [frames, 5023, 3] (or a folder of per-frame meshes). MESH: ``.obj`` /
``.ply`` of any topology. PAIRS: lines ``flame_vertex target_vertex``. FOLDER: OBJs with the target's
topology, one per shape key named by its stem (``Neutral.obj`` = rest shape). ``--landmarks auto``
guesses the pairs (:func:`..core.character.guess.guess_landmarks`), says that they are a guess and prints
the fit's residual; ``--guess-landmarks`` also writes them for the user to check, edit and pass back.

Without ``--target-keys`` the target gets the transferred keys (50 + bias, VOCA's weights); with it,
the rig's own keys driven by solved weights, and ``--curves`` writes them (Live Link Face CSV or JSON).

Lips that close (issue 18): with ``--audio`` the lips close on its p/b/m and tuck on f/v, as in
``animate`` / ``infer`` (the same flags, :mod:`voca_addon.cli.articulation`): the corrections are made on
FLAME (:func:`voca_addon.core.articulation.add_corrections`) and transferred like every other field, kept
apart as the keys ``voca_lips_close`` / ``voca_lips_tuck`` on the character (VOCA's transferred keys stay
exact); with ``--target-keys`` the solve reproduces the corrected motion (on an ARKit rig mouthClose /
mouthPress close the lips). A SOURCE that already carries corrections (``infer``'s ``.npz``) is never
corrected twice: its corrections transfer as they are, ``--phonemes`` writes its own phones, and an
explicit ``--alignment`` / ``--transcript`` is refused (it could not be used). ``--no-closures``: VOCA's
exact motion, a source's corrections dropped. A SOURCE that stores phones without corrections (``infer
--no-closures --alignment …``) brings them too: without ``--alignment`` / ``--transcript`` they are the
clip's phones (closures, ``--phonemes``), not detected again from ``--audio``, and the report says "stored in".
Every input is read and checked, and the fit, transfer and solve are computed, before Blender is
touched: a refused input changes nothing. SOURCE is refused when truncated or damaged, of another shape, not
finite, or more than 5× larger or smaller than the template (the ratio and likely units said:
:mod:`..core.animation.sources`); ``--audio`` is decoded and ``--fps`` checked (every command's range) before
the fit; ``--audio`` must last as long as SOURCE's frames at its rate (within two frames:
:func:`.articulation.check_audio_length`), and ``--channel`` (the channel its phones are found on) must exist
and, when phones are found on it, not be silent. A still or one-frame SOURCE gives still keys; the share of the
motion explained is printed only where it means something (:func:`..core.character.keysolve.explained_text`).

Contract: argparse + core at import; ``bpy`` only when writing the .blend.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


from . import articulation, common
from ..core.character.retarget import is_auto, load_character, retarget_motion, source_with_phones
from ..core.errors import InputError



def add_parser(sub) -> None:
    """Add the ``retarget`` subcommand to an ``add_subparsers`` object."""
    r = sub.add_parser("retarget", help="VOCA's motion onto any head mesh (fit, transfer, own keys) → .blend")
    r.add_argument("source", help="infer result / .npz / .npy with vertices [F, 5023, 3], or a folder of frames")
    r.add_argument("--target", required=True, metavar="MESH", help="the character's head, .obj or .ply")
    r.add_argument("--landmarks", required=True, metavar="PAIRS", help="text file of 'flame_vertex "
                   "target_vertex' lines (at least 4; the 68 iBUG points are best), or 'auto' for an "
                   "automatic first guess")
    r.add_argument("--guess-landmarks", metavar="PAIRS_OUT.txt", help="with --landmarks auto: write the "
                   "guessed pairs here to check and edit (then pass that file as --landmarks)")
    r.add_argument("--out", required=True, metavar="OUT.blend")
    r.add_argument("--target-keys", metavar="FOLDER", help="the rig's keys as OBJs (drive them instead of "
                   "adding VOCA's keys)")
    r.add_argument("--curves", metavar="OUT.csv", help="with --target-keys: the key curves as a Live Link "
                   "Face .csv or a .json")
    r.add_argument("--template", metavar="MESH", help="FLAME template (default ~/voca_models/FLAME_sample.ply)")
    r.add_argument("--audio", metavar="WAV", help="sound to add at the first frame; the lips close on its "
                   "p/b/m (see the articulation flags)")
    r.add_argument("--fps", type=float, help="the source's frame rate (default: the .npz's, else 60)")
    r.add_argument("--channel", type=common.parse_channel, default=0, metavar="N|mix", help="with --audio: the "
                   "channel its phones are found on: 0 (default), 1, ... or 'mix' (mean of all)")
    r.add_argument("--overwrite", action="store_true", help="replace existing --out / --curves / --phonemes files")
    articulation.add_args(r)             # --transcript, --alignment, --no-closures, --phonemes (with --audio)
    r.set_defaults(run=run)


@dataclass(frozen=True)
class Retarget:
    """Everything computed before Blender: the fit, the motion on the target, the rig's solved keys."""

    target: object          # meshio.Mesh
    fit: object             # character.fit.Fit
    motion: object          # ShapeKeyAnimation on the target
    keys: Optional[object]  # keyfiles.KeySet
    solution: Optional[object]  # keysolve.KeySolution
    guess: Optional[object] = None  # guess.LandmarkGuess with --landmarks auto
    phones: Optional[object] = None  # core.phonemes.PhoneTrack with --audio (or the source's), else None
    articulation: str = ""          # one line: the phones' source and count, closures on / off


def _paths(args):
    """Check the destinations and that every input exists → (out, curves or None, guessed pairs or None,
    the articulation plan: :func:`voca_addon.cli.articulation.plan_from_args`)."""
    from ..core import outputs
    out = outputs.check_output(args.out, "--out", (".blend",), args.overwrite)
    curves = guessed = None
    if args.curves:
        if not args.target_keys:
            raise InputError("--curves needs --target-keys: the curves are the weights of the rig's own keys.")
        curves = outputs.check_output(args.curves, "--curves", (".csv", ".json"), args.overwrite)
    if getattr(args, "guess_landmarks", None):
        if not is_auto(args.landmarks):
            raise InputError("--guess-landmarks writes the automatic guess: use it with --landmarks auto.")
        guessed = outputs.check_output(args.guess_landmarks, "--guess-landmarks", (".txt",), args.overwrite)
    landmarks = None if is_auto(args.landmarks) else args.landmarks
    for path, what in ((args.source, "SOURCE"), (args.target, "--target"), (landmarks, "--landmarks"),
                       (args.audio, "--audio")):
        if path is not None and not os.path.exists(path):
            hint = " (or give --landmarks auto for a first guess)" if what == "--landmarks" else ""
            raise InputError(f"{what} '{path}' was not found. Check the path{hint}.")
    _refuse_non_mesh(args.target)
    plan = articulation_plan(args)
    written = {"--out": out, "--curves": curves, "--guess-landmarks": guessed,
               "--phonemes": plan.phonemes_out and Path(plan.phonemes_out)}
    outputs.check_distinct(written, {"SOURCE": args.source, "--target": args.target, "--audio": args.audio,
                                     "--landmarks": landmarks, "--alignment": getattr(args, "alignment", None)})
    return str(out), (str(curves) if curves else None), (str(guessed) if guessed else None), plan


def _refuse_non_mesh(path: str) -> None:
    """InputError naming ``--target`` when the file is no mesh at all (the mesh reader's own rule: a PLY header,
    or an OBJ by its name or its ``v`` lines), rather than the reader's words about the template."""
    if not os.path.isfile(path):
        return                                  # a folder: the mesh reader says so
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if head.strip() and not (head.startswith(b"ply") or path.lower().endswith(".obj") or head.startswith(b"v ")
                             or b"\nv " in head):
        raise InputError(f"--target '{path}' is neither a PLY nor an OBJ mesh; export the character's head as "
                         ".ply or .obj.")


def articulation_plan(args):
    """The articulation flags checked (InputError before any computing): --transcript / --alignment /
    --phonemes need --audio; a bad alignment file, an empty transcript… are refused. Phones stored in SOURCE
    are the clip's unless --alignment / --transcript gives others (:func:`.articulation.source_phones`)."""
    audio = getattr(args, "audio", None)
    if audio is not None:                 # read whole before the fit: a bad file is refused at once
        from ..core.speech.audio import load_audio
        load_audio(audio)
    return articulation.plan_from_args(args, audio, getattr(args, "overwrite", False), source=args.source)


def compute(args, plan=None) -> Retarget:
    """Read and check every input, then fit, transfer and (with --target-keys) solve. No bpy.

    With ``--audio`` the phone pass (PocketSphinx, or the ``--alignment`` file) runs in a thread beside the
    fit, and the lips' corrections are made on FLAME before the transfer (see the module docstring).
    ``plan``: :func:`articulation_plan` of ``args`` when already checked.
    """
    from ..core.models import modelfiles
    common.check_fps(args.fps)                              # one range and wording for every command's --fps
    plan = articulation_plan(args) if plan is None else plan
    audio = getattr(args, "audio", None)
    template_path = modelfiles.resolve_template(args.template)
    anim, stored = source_with_phones(args.source, template_path, args.fps)
    carried = anim.corrections is not None
    if audio is not None:           # another clip's recording: refused before the fit where phones come from it
        articulation.check_audio_length(audio, anim.num_frames, anim.fps, args.source,
                                        refuse=(plan.closures or plan.phonemes_out is not None) and not carried)
    if carried:
        articulation.refuse_new_phones_for_corrected(args.source, args)
    if not plan.closures and getattr(args, "no_closures", False):
        anim = anim.exact()                              # --no-closures: VOCA's exact motion
    phones = None                                        # the phone pass, in a thread beside the fit
    if audio is not None:                                # --channel: one that exists; not silent if read
        channel = getattr(args, "channel", 0)
        read = plan.needs_pass and not (carried and plan.closures)      # carried: its own phones
        articulation.check_channel(audio, channel, read)
        if plan.wants_phones and not (carried and plan.closures):
            phones = articulation.PhonePass(plan, articulation.audio_source(audio, channel) if read else audio)
    character = load_character(args.target, args.landmarks, args.target_keys, template_path)
    track = phones.result() if phones is not None else (stored if carried and plan.closures else plan.track or stored)
    anim = articulation.articulate(anim, plan, track) if audio is not None else anim
    motion, solution = retarget_motion(character, anim)
    line = articulation.describe(plan, track, anim) if audio is not None or track is not None else ""
    if carried and anim.corrections is not None:
        line = (line + "; " if line else "") + "the source's lip corrections transferred (not made again)"
    return Retarget(character.target, character.fit, motion, character.keys, solution, character.guess,
                    track, line)


def guess_report(guess, path: Optional[str] = None) -> str:
    """One line saying the landmarks are an automatic guess, how well FLAME's head fitted, what to do."""
    g = guess.residuals
    where = (f"check them in {path} and pass the edited file as --landmarks" if path else
             "check them (--guess-landmarks FILE writes them to edit)")
    return (f"landmarks: an AUTOMATIC FIRST GUESS of the 68 pairs, checked by no one (FLAME's head aligned "
            f"at scale {g['scale']:.4g}: the mesh {g['surface']:.1f} mm from it, its landmarks "
            f"{g['landmarks']:.1f} mm from the mesh); {where}")


def _report(result: Retarget) -> str:
    r = result.fit.residuals
    text = (f"fit: scale {r['scale']:.4g} ({r['unit']}), landmarks {r['landmarks_aligned']['mean']:.2f} mm "
            f"after alignment, {r['landmarks_registered']['mean']:.2f} mm after registration (max "
            f"{r['landmarks_registered']['max']:.2f}), surface {r['surface']['mean']:.2f} mm mean")
    if result.solution is not None:
        from ..core.character.keysolve import explained_text
        s, scale = result.solution.report, result.fit.similarity.scale
        text += (f"; keys: {s['mean_error'] / scale * 1e3:.2f} mm mean / {s['p95_error'] / scale * 1e3:.2f} mm "
                 f"p95 error, {explained_text(s, 1e3 / scale)}")
    return text + (f"; {result.articulation}" if result.articulation else "")


def write_curves(path: str, result: Retarget) -> None:
    from ..core.character import arkit
    sol = result.solution
    if path.lower().endswith(".csv"):
        arkit.write_live_link_csv(path, sol.weights, sol.names, result.motion.fps)
    else:
        arkit.write_curves_json(path, sol.weights, sol.names, result.motion.fps, sol.report)


def run(args) -> None:
    """The whole command (user errors raise VocaError for the CLI's guard)."""
    out, curves, guessed, plan = _paths(args)
    articulation.warn(plan.warnings, sys.stdout)
    result = compute(args, plan)
    if result.guess is not None:
        print(guess_report(result.guess, guessed))
    bpy = common.import_bpy("retarget")
    from ..blender import blendfile
    from ..blender.character import data as character_io, writer as character_writer
    from ..blender import compat
    from ..blender.speech import writer
    scene, _ = blendfile.open_scene(bpy, None)
    blendfile.set_scene_fps(scene, result.motion.fps)
    name = os.path.splitext(os.path.basename(args.target))[0] or "Character"
    obj = character_writer.build_target(name, result.target.vertices, result.target.faces, scene.collection)
    start = scene.frame_start
    if result.solution is None:
        report = writer.write_animation(obj, result.motion, scene, start, name_prefix="VOCA")
        end, what = report.frame_end, f"{len(result.motion.names)} transferred keys + bias"
        made = character_writer.write_corrections(obj, result.motion, scene, start)
        what += f" + {', '.join(made)}" if made else ""
    else:
        character_writer.add_rig_keys(obj, result.keys.rest, result.keys.names, result.keys.deltas)
        character_writer.drive_keys(obj, result.solution.names, result.solution.weights, result.motion.fps,
                                    scene, start)
        end, what = start + result.motion.resampled(writer.scene_fps(scene)).num_frames - 1, \
            f"its {len(result.keys.names)} own keys driven"
    writer.set_frame_range(scene, start, end)
    if args.audio and compat.HAS_AUDIO:
        writer.add_sound_strip(scene, args.audio, start)
    elif args.audio:
        print(f"warning: {compat.NO_AUDIO_MESSAGE}")
    character_io.store_fit(obj, result.fit, result.target.vertices)   # later runs in Blender reuse it
    if curves:
        write_curves(curves, result)
    if guessed:
        from ..core.character import landmarks
        landmarks.write_pairs(guessed, result.guess.flame_ids, result.guess.target_ids)
    if plan.phonemes_out:
        articulation.write_phonemes(result.phones, plan.phonemes_out, getattr(args, "audio", None))
    blendfile.save_blend(bpy, out)
    print(_report(result))
    print(f"wrote {out}: '{obj.name}' ({len(result.target.vertices)} vertices), {what}, frames {start}-{end}"
          + (f"; curves {curves}" if curves else "") + (f"; guessed landmark pairs {guessed}" if guessed else "")
          + (f"; phones {plan.phonemes_out}" if plan.phonemes_out else ""))
    if result.phones is not None:
        articulation.warn(result.phones.warnings, sys.stdout)
