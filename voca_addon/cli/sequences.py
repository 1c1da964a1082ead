"""``import-sequence SOURCE --out OUT.blend`` and ``export-pc2`` / ``export-obj SCENE.blend --out …``.

* ``import-sequence SOURCE`` — a folder of per-frame OBJ/PLY, a ``.npy`` or a ``.npz`` → shape keys on a
  new head (+ ``--audio``, with lips that close on its p/b/m) in an empty scene at the sequence's rate.
  ``--audio`` must last as long as SOURCE's frames at its rate (within two frames,
  :func:`.articulation.check_audio_length`): another clip's recording is refused before Blender is touched.
  ``--channel`` chooses the channel its phones are found on (the sound strip keeps every channel).
* ``export-pc2 SCENE.blend`` / ``export-obj SCENE.blend`` — the head's frames over the scene range.

Contract: stdlib at import; ``bpy`` (:func:`.common.import_bpy`) when a command runs.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from . import articulation, common

DEFAULT_FPS = 60.0                         # a sequence's rate when neither --fps nor the file gives one


def add_parser(sub) -> None:
    i = sub.add_parser("import-sequence", help="mesh sequence → shape keys in a .blend (needs Blender)")
    i.add_argument("source", help="folder of per-frame .obj/.ply, a .npy [F,V,3] or a .npz with 'vertices'")
    i.add_argument("--template", metavar="MESH", help="the sequence's neutral mesh (FLAME_sample.ply)")
    i.add_argument("--audio", metavar="WAV", help="sound to add at the first frame (as long as the sequence)")
    i.add_argument("--channel", type=common.parse_channel, default=0, metavar="N|mix", help="with --audio: the "
                   "channel its phones are found on: 0 (default), 1, ... or 'mix' (mean of all)")
    i.add_argument("--fps", type=float, help="the sequence's frame rate, above 0 and at most 1000 (default: "
                   "the .npz's, else 60)")
    i.add_argument("--out", required=True, metavar="OUT.blend")
    i.add_argument("--overwrite", action="store_true", help="replace an existing --out (kept as .blend1)")
    articulation.add_args(i)            # with --audio: lip closures from the sound (not twice)
    i.set_defaults(run=run_import)
    for name, what in (("export-pc2", "F.pc2"), ("export-obj", "FOLDER")):
        e = sub.add_parser(name, help=f"a .blend's animated head → {what} (needs Blender)")
        e.add_argument("blend", metavar="SCENE.blend")
        e.add_argument("--out", required=True, metavar=what)
        e.add_argument("--object", metavar="NAME", help="the head (default: the active or only animated mesh)")
        e.add_argument("--overwrite", action="store_true", help="replace an earlier export in " +
                       ("FOLDER" if name == "export-obj" else "F.pc2"))
        e.set_defaults(run=run_export)


def _sequence_fps(source: str) -> Optional[float]:
    """The ``fps`` stored in a ``.npz`` sequence, or None (read without loading the frames)."""
    if not source.lower().endswith(".npz") or not os.path.isfile(source):
        return None
    from ..core.animation.sources import check_rate, open_npz
    with open_npz(source) as archive:      # a truncated or damaged file: InputError naming it
        return check_rate(archive["fps"], f"the fps stored in '{source}'") if "fps" in archive else None


def _sequence_frames(source: str) -> Optional[int]:
    """SOURCE's frame count, read without building the animation (a ``.npy``'s header; a folder's frame files;
    an ``.npz``'s ``weights`` or ``vertices``), or None where the full read will refuse the file anyway."""
    import numpy as np
    from ..core.animation import sequences
    from ..core.animation.sources import open_npz
    if os.path.isfile(source) and source.lower().endswith(sequences.MESH_EXTENSIONS):
        source = os.path.dirname(source)               # a picked frame means its folder, as the import reads it
    if os.path.isdir(source):
        return len(sequences.frame_files(source))
    if source.lower().endswith(".npz"):
        with open_npz(source) as archive:
            member = next((m for m in ("weights", "vertices") if m in archive), None)
            shape = archive[member].shape if member else ()
    else:
        try:
            shape = np.load(source, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError, AttributeError):
            return None
    return int(shape[0]) if len(shape) >= 2 and shape[0] > 0 else None


def _carries_corrections(source: str) -> bool:
    """Whether the ``.npz`` SOURCE holds lip corrections (then they are kept, not made again from --audio)."""
    from ..core.animation.npzextras import CORRECTION_MEMBERS
    from ..core.animation.sources import open_npz
    with open_npz(source) as archive:
        return CORRECTION_MEMBERS[1] in archive


def run_import(args) -> None:
    """SOURCE (+ ``--audio``) → shape keys in a new ``.blend``. With ``--audio`` the lips close on its p/b/m
    (:mod:`voca_addon.cli.articulation`), unless the source already carries corrections (an ``.npz`` from
    ``infer`` / ``animate --npz`` / ``batch``, read in its shape-key form: never corrected twice). Phones the
    SOURCE stores are the clip's unless --alignment / --transcript gives others (not detected again)."""
    import dataclasses
    from pathlib import Path
    from ..core import outputs
    args.out = common.out_file(args.out, ".blend", args.overwrite)
    source = common.existing(args.source, "Sequence")
    audio = common.existing(args.audio, "Audio file")
    common.check_fps(args.fps)
    if audio:
        from ..core.speech.audio import check_audio_path
        check_audio_path(audio)
    plan = articulation.plan_from_args(args, audio, args.overwrite, source=source)   # + the phones SOURCE stores
    if audio:
        carried = source.lower().endswith(".npz") and _carries_corrections(source)   # then no phone pass
        frames = _sequence_frames(source)
        if frames is not None:      # another clip's recording: refused before Blender where phones come from it
            articulation.check_audio_length(audio, frames, args.fps or _sequence_fps(source) or DEFAULT_FPS, source,
                                            refuse=(plan.closures or plan.phonemes_out is not None) and not carried)
        articulation.check_channel(audio, args.channel, plan.needs_pass and (args.no_closures or not carried))
    outputs.check_distinct({"--out": Path(args.out), "--phonemes": plan.phonemes_out and Path(plan.phonemes_out)},
                           {"SOURCE": source, "--audio": audio, "--alignment": getattr(args, "alignment", None)})
    bpy = common.import_bpy("import-sequence")
    from ..blender import blendfile
    from ..blender.exports import sequences as sequence_io
    from ..core.animation import npzextras
    from ..core.models import modelfiles
    template = modelfiles.resolve_template(args.template)
    fps = args.fps or _sequence_fps(source) or DEFAULT_FPS
    anim = None
    if source.lower().endswith(".npz") and npzextras.is_animation_file(source):
        anim = npzextras.load_animation(source)      # shape-key form: corrections kept apart
        from ..core.animation.sources import check_frames
        from ..core.flame.meshio import read_mesh
        picks = sorted({0, anim.num_frames // 2, anim.num_frames - 1})
        check_frames(anim.vertices(picks), read_mesh(template).vertices, source, template)   # units, shape
        anim = anim if fps == anim.fps else dataclasses.replace(anim, fps=float(fps))
    already = anim is not None and anim.corrections is not None
    if already:
        articulation.refuse_new_phones_for_corrected(source, args)
    track = None
    if already and not args.no_closures:             # never corrected twice: re-made from the file's phones
        track = npzextras.read_phones(source)
        print(f"note: '{os.path.basename(source)}' already carries lip corrections "
              f"({', '.join(anim.corrections.names)}); not corrected again"
              + ("" if track is not None else " (it holds no phones to re-make them from: imported without them)"))
        plan = dataclasses.replace(plan, closures=track is not None, phonemes_out=plan.phonemes_out)
    elif audio:
        articulation.warn(plan.warnings, sys.stdout)
        track = articulation.find_phones(plan, articulation.audio_source(audio, args.channel))
    phones = None
    if plan.closures and track is not None:
        from ..blender.articulation.phones import PhoneOutcome
        phones = PhoneOutcome(track, "; ".join(track.warnings) or None)
    scene, _ = blendfile.open_scene(bpy, None)
    blendfile.set_scene_fps(scene, fps)
    report = sequence_io.import_sequence(scene, source, template, audio, fps=fps, animation=anim, phones=phones)
    if plan.phonemes_out:
        with outputs.Staged([Path(args.out), Path(plan.phonemes_out)]) as staged:
            blendfile.save_copy(bpy, staged.temp(Path(args.out)), args.out)
            articulation.write_phonemes(track, str(staged.temp(Path(plan.phonemes_out))), audio)
            staged.commit()
    else:
        blendfile.save_blend(bpy, args.out)
    print(f"wrote {args.out}: {report.frames_read} frames as {report.rank} shape keys on "
          f"'{report.obj.name}', frames {scene.frame_start}-{scene.frame_end} at {fps:g} fps"
          + "".join(f"; {line}" for line in report.articulation)
          + (f"; phones {plan.origin}" if plan.origin and track == plan.track and (plan.closures or plan.phonemes_out)
             else ""))
    if plan.phonemes_out:
        print(f"wrote {plan.phonemes_out}: {len(track.phones)} phones")
    if phones is None and track is not None:
        articulation.warn(track.warnings, sys.stdout)
    if audio and not report.sound:
        from ..blender import compat
        print(f"warning: {compat.NO_AUDIO_MESSAGE}")


def run_export(args) -> None:
    blend = common.existing(args.blend, "Scene")
    from ..core import outputs
    if args.command == "export-pc2":
        out = common.out_file(args.out, ".pc2", args.overwrite)
    else:          # a folder: sequence_io refuses to replace an earlier export without --overwrite
        out = str(outputs.check_output(args.out, "--out", overwrite=args.overwrite, folder_output=True))
    bpy = common.import_bpy(args.command)
    from ..blender import blendfile
    from ..blender.exports import sequences as sequence_io
    scene, _ = blendfile.open_scene(bpy, blend)
    head = sequence_io.find_head(scene, args.object)
    if args.command == "export-pc2":
        sequence_io.export_pc2(scene, head, out)
        print(f"wrote {out}: '{head.name}', frames {scene.frame_start}-{scene.frame_end}")
    else:
        files = sequence_io.export_obj_sequence(scene, head, out, overwrite=args.overwrite)
        print(f"wrote {len(files)} OBJ files to {out}")
