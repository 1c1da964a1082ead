"""The Character sub-panel's operators: Guess Landmarks, Fit, Transfer, Drive Its Keys (worker thread in a window).

- ``voca.character_guess_landmarks`` — an automatic first guess of the 68 landmarks
  (:func:`voca_addon.core.character.guess.guess_landmarks`) placed as empties ``iBUG_0`` … ``iBUG_67`` on
  the target (:mod:`voca_addon.blender.character.landmarks`), replacing the add-on's earlier ones (never the artist's: refused);
  the Landmarks choice switches to Empties and the report says to check and drag them before Fit;
- ``voca.character_fit`` — fit FLAME to the target (:func:`voca_addon.core.character.fit.fit_target`),
  keep the fit on the object (:func:`voca_addon.blender.character.data.store_fit`), report the residuals (also drawn in the
  panel);
- ``voca.character_transfer`` — the source's motion as shape keys on the target
  (:func:`~voca_addon.core.character.transfer.transfer` → :func:`..speech.writer.write_animation`): Remove,
  re-runs and exports work as on a FLAME head; it replaces the previous transfer or drive;
- ``voca.character_drive`` — per-frame weights for the target's own keys (ARKit-named ones when present)
  keyed in an add-on-owned action (:func:`voca_addon.blender.character.writer.drive_keys`: it replaces the previous
  drive or transfer, and records the keys' values so that Remove gives them back); optionally the curves as a
  Live Link Face CSV / JSON.

The source is a FLAME sequence file (an ``infer`` result or any import-sequence input: its motion starts at
the scene's start frame, and the scene's range is set to it) or a FLAME head in the scene animated by
Animate from audio (:mod:`voca_addon.blender.character.source`: the character is keyed on the head's own frames at the
scene's rate; the frame range and the sound strip stay as Animate from audio left them).

Each operator is a :class:`..jobs.JobOperator`: ``prepare`` reads the target, landmarks, fit, source and
keys from Blender and refuses what it cannot animate safely (:func:`voca_addon.blender.character.writer.check_target_object`)
before anything changes; ``compute`` runs the core's fit / transfer / key solve (any thread, no bpy);
``apply`` checks the target did not change meanwhile and writes inside :func:`..transaction.all_or_nothing`.
From a button the compute runs in a worker thread (progress bar, Esc cancels with the scene untouched);
from Python or headless it runs synchronously.

Contract: ``prepare`` / ``apply`` main thread (``bpy``); ``compute`` numpy + core only.
"""
# No ``from __future__ import annotations``: Blender evaluates registered classes' annotations.

from dataclasses import dataclass
from typing import Optional

import bpy

from ...core.errors import InputError
from . import source as character_source, writer as character_writer
from .. import jobs, reporting, transaction
from ..speech import writer

NO_SCIPY = ("the Character tools need scipy, which this Blender's Python lacks: install the extension "
            "zip for your platform (it bundles scipy), or pip install scipy into Blender's Python.")


def _stage():
    """The Character stage's modules, imported on first use: the add-on registers without scipy."""
    try:
        from ...core.animation import sequences
        from ...core.character import arkit, fit as fitting, guess, keysolve, landmarks as lm, transfer
        from ...core.flame import meshio
        from . import data as character_io, landmarks as character_landmarks
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "scipy" or "scipy" in str(exc):
            raise InputError(NO_SCIPY) from None
        raise
    return dict(sequences=sequences, arkit=arkit, fitting=fitting, guess=guess, keysolve=keysolve, lm=lm,
                transfer=transfer, meshio=meshio, io=character_io, marks=character_landmarks)


# ---------------------------------------------------------------------------- main thread: read and check

@dataclass(frozen=True)
class Target:
    """The target as read from Blender: name, session_uid, mesh-local vertices [V, 3], triangles, fingerprint."""

    name: str
    uid: int
    vertices: object
    faces: object
    fingerprint: str


def _template(context):
    from ..exports import sequences as sequence_io
    from ...core.models import modelfiles
    return _stage()["meshio"].read_mesh(modelfiles.resolve_template(sequence_io._template_pref(context)))


def _read_target(context) -> Target:
    obj = context.scene.voca_character.target
    if obj is None:
        raise InputError("pick the target head mesh first.")
    character_writer.check_target_object(obj)
    if obj.mode == "EDIT":                        # the mesh data lags behind the edit until Object Mode
        raise InputError(f"'{obj.name}' is in Edit Mode; switch to Object Mode and run again.")
    io = _stage()["io"]
    vertices, faces = io.mesh_arrays(obj)
    return Target(obj.name, obj.session_uid, vertices, faces, io.fingerprint(vertices))


def _current_target(target: Target):
    """The target object again, on the main thread after the compute: refused if it went or changed."""
    obj = next((o for o in bpy.data.objects if o.session_uid == target.uid), None)     # renaming it is fine
    if obj is None:
        raise InputError(f"'{target.name}' was deleted while VOCA was working; nothing was written.")
    character_writer.check_target_object(obj)
    io = _stage()["io"]
    if io.fingerprint(io.mesh_arrays(obj)[0]) != target.fingerprint:
        raise InputError(f"'{target.name}' was edited while VOCA was working; nothing was written. Run again.")
    return obj


@dataclass(frozen=True)
class MotionPlan:
    """What Transfer and Drive compute from: the target, its fit, and the source (a file or a head)."""

    target: Target
    fit: object
    template_path: str
    source_path: Optional[str]                       # a FLAME sequence file, or None for ``head``
    head: Optional[character_source.HeadMotion]      # the animated head's motion, read on the main thread
    start_frame: int
    names: tuple = ()                                # Drive: the rig keys and their deltas [K, V, 3]
    deltas: object = None
    curves_path: Optional[str] = None


def _motion_plan(context, target: Optional[Target] = None, **extra) -> MotionPlan:
    settings, stage = context.scene.voca_character, _stage()
    target = target or _read_target(context)
    template = _template(context)
    head = path = None
    if settings.source == "HEAD":
        if settings.source_head is not None and settings.source_head.name == target.name:
            raise InputError("the target and the source head are the same object; pick the character as Target.")
        head = character_source.head_animation(settings.source_head, context.scene)
    elif not settings.source_path:
        raise InputError("choose the FLAME sequence to retarget (Sequence), or switch Source to Animated head.")
    else:
        path = bpy.path.abspath(settings.source_path)
    fit = stage["io"].load_fit(bpy.data.objects[target.name], target.vertices, template.faces)
    start = head.start_frame if head is not None else context.scene.frame_start
    return MotionPlan(target, fit, str(template.path), path, head, int(start), **extra)


def _compute_motion(plan: MotionPlan, progress):
    """The source's animation carried onto the target (any thread)."""
    stage = _stage()
    progress(0.05, "reading the sequence")
    anim = plan.head.animation if plan.head is not None else \
        stage["sequences"].import_sequence(plan.source_path, plan.template_path)
    progress(0.3, "transferring the motion")
    return stage["transfer"].transfer(anim, plan.fit, plan.target.vertices, plan.target.faces)


# ---------------------------------------------------------------------------- operators

CHARACTER_BUSY = "VOCA is working on the character (Esc cancels)."     # jobs.busy_reason while one runs

def _base_reason(context) -> Optional[str]:
    settings = getattr(context.scene, "voca_character", None) if context.scene is not None else None
    if settings is None:
        return "No scene."
    busy = jobs.busy_reason(context.scene)          # Animate or another Character job on this scene
    if busy:
        return busy
    if settings.target is None:
        return "Pick the target head mesh."
    return None


def _source_reason(context) -> Optional[str]:
    reason = _base_reason(context)
    if reason:
        return reason
    settings = context.scene.voca_character
    if settings.source == "FILE":
        return None if settings.source_path else "Choose the FLAME sequence file."
    problem = character_source.head_problem(settings.source_head)
    return problem[0].upper() + problem[1:] if problem else None


def residual_text(res: dict) -> str:
    return (f"landmarks {res['landmarks_registered']['mean']:.2f} mm (max {res['landmarks_registered']['max']:.2f}), "
            f"surface {res['surface']['mean']:.2f} mm, scale {res['scale']:.3g} ({res['unit']})")


def guess_text(guess) -> str:
    """The guess's figures, worded like ``retarget --landmarks auto``."""
    g = guess.residuals
    return (f"FLAME's head aligned at scale {g['scale']:.4g} ({g['unit']}): the mesh {g['surface']:.1f} mm from "
            f"it, its landmarks {g['landmarks']:.1f} mm from the mesh")


class VOCA_OT_character_guess_landmarks(jobs.JobOperator, bpy.types.Operator):
    """Guess the 68 landmarks on the target as empties iBUG_0 … iBUG_67, to check and drag before Fit (Esc cancels)"""

    bl_idname = "voca.character_guess_landmarks"
    bl_label = "Guess Landmarks"
    bl_options = {"REGISTER", "UNDO"}
    PROGRESS_GROUP = "voca_character"
    BUSY = CHARACTER_BUSY

    disabled_reason = staticmethod(_base_reason)

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context):
        target = _read_target(context)
        _stage()["marks"].check_no_artist_empties(context.scene)       # refused before 3–5 s of work
        return target, _template(context)

    @staticmethod
    def compute(plan, progress):
        target, template = plan
        progress(0.05, "guessing the landmarks")
        return _stage()["guess"].guess_landmarks(template.vertices, template.faces, target.vertices, target.faces)

    @classmethod
    def apply(cls, scene, plan, guess):
        obj = _current_target(plan[0])
        marks = _stage()["marks"]
        marks.check_no_artist_empties(scene)                          # made meanwhile: still never mixed
        with transaction.all_or_nothing(scene):
            replaced = marks.place_empties(scene, obj, guess.target_ids)
        scene.voca_character.landmarks = "EMPTIES"
        again = f" (replacing the {replaced} guessed before)" if replaced else ""
        return (f"'{obj.name}': {len(guess.target_ids)} landmark empties iBUG_0 … iBUG_67 placed{again}: an "
                f"AUTOMATIC FIRST GUESS, checked by no one: check them and drag any that is off onto its spot "
                f"before Fit ({guess_text(guess)})")


class VOCA_OT_character_fit(jobs.JobOperator, bpy.types.Operator):
    """Fit FLAME to the target head (landmarks, then non-rigid registration) and keep the fit on it (Esc cancels)"""

    bl_idname = "voca.character_fit"
    bl_label = "Fit"
    bl_options = {"REGISTER", "UNDO"}
    PROGRESS_GROUP = "voca_character"
    BUSY = CHARACTER_BUSY

    disabled_reason = staticmethod(_base_reason)

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context):
        stage = _stage()
        target = _read_target(context)
        settings = context.scene.voca_character
        if settings.landmarks == "EMPTIES":
            context.view_layer.update()          # empties moved from Python: their world matrices now
            pairs = stage["io"].pairs_from_empties(bpy.data.objects[target.name], context.scene.objects)
        elif not settings.pairs_path:
            raise InputError("choose the landmark pairs file (or switch Landmarks to Empties).")
        else:
            pairs = stage["lm"].read_pairs(bpy.path.abspath(settings.pairs_path))
        pairs = stage["lm"].check_pairs(*pairs, len(target.vertices))      # count and ids: refused at once
        return target, pairs, _template(context)

    @staticmethod
    def compute(plan, progress):
        target, (flame_ids, target_ids), template = plan
        stage = "fitting FLAME to the target"
        progress(0.02, stage)
        return _stage()["fitting"].fit_target(template.vertices, template.faces, target.vertices, target.faces,
                                              flame_ids, target_ids, lambda share: progress(0.05 + 0.95 * share, stage))

    @classmethod
    def apply(cls, scene, plan, fit):
        obj = _current_target(plan[0])
        _stage()["io"].store_fit(obj, fit, plan[0].vertices)
        return f"Fitted '{obj.name}': {residual_text(fit.residuals)}"


class VOCA_OT_character_transfer(jobs.JobOperator, bpy.types.Operator):
    """Animate the fitted target with the source's motion as shape keys (VOCA's keys, same weights; Esc cancels)"""

    bl_idname = "voca.character_transfer"
    bl_label = "Transfer"
    bl_options = {"REGISTER", "UNDO"}
    PROGRESS_GROUP = "voca_character"
    BUSY = CHARACTER_BUSY

    disabled_reason = staticmethod(_source_reason)

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context):
        return _motion_plan(context)

    @staticmethod
    def compute(plan, progress):
        return _compute_motion(plan, progress)

    @classmethod
    def apply(cls, scene, plan, motion):
        obj = _current_target(plan.target)
        with transaction.all_or_nothing(scene, [obj]):
            report = writer.write_animation(obj, motion, scene, plan.start_frame)
            character_writer.write_corrections(obj, motion, scene, plan.start_frame)   # the lip closures
            if plan.head is None:                    # a file: the clip sets the range; a head already did
                writer.set_frame_range(scene, report.frame_start, report.frame_end)
        source = f"'{plan.head.head_name}'" if plan.head is not None else "the sequence"
        return (f"'{obj.name}': {len(motion.names)} transferred keys from {source}, "
                f"frames {report.frame_start}-{report.frame_end}")


class VOCA_OT_character_drive(jobs.JobOperator, bpy.types.Operator):
    """Key the target's own shape keys (ARKit-named ones first) to reproduce the source's mouth motion (Esc cancels)"""

    bl_idname = "voca.character_drive"
    bl_label = "Drive Its Keys"
    bl_options = {"REGISTER", "UNDO"}
    PROGRESS_GROUP = "voca_character"
    BUSY = CHARACTER_BUSY

    disabled_reason = staticmethod(_source_reason)

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context):
        curves = context.scene.voca_character.curves_path
        path = bpy.path.abspath(curves) if curves else None
        if path:                                                  # a bad destination: refused before any work
            from ...core import outputs
            outputs.check_output(path, "Curves", (".csv", ".json"), overwrite=True)
        target = _read_target(context)
        names, deltas = _stage()["io"].rig_keys(bpy.data.objects[target.name])
        return _motion_plan(context, target, names=tuple(names), deltas=deltas, curves_path=path)

    @staticmethod
    def compute(plan, progress):
        motion = _compute_motion(plan, progress)
        progress(0.6, "solving its keys")
        return motion, _stage()["keysolve"].solve_keys(motion, plan.deltas, list(plan.names))

    @classmethod
    def apply(cls, scene, plan, result):
        motion, solution = result
        obj = _current_target(plan.target)
        with transaction.all_or_nothing(scene, [obj]):
            character_writer.drive_keys(obj, list(plan.names), solution.weights, motion.fps, scene, plan.start_frame)
            if plan.curves_path:
                arkit = _stage()["arkit"]
                write = arkit.write_live_link_csv if plan.curves_path.lower().endswith(".csv") \
                    else arkit.write_curves_json
                write(plan.curves_path, solution.weights, list(plan.names), motion.fps)
        scale = plan.fit.similarity.scale
        return (f"'{obj.name}': {len(plan.names)} keys driven; error "
                f"{solution.report['mean_error'] / scale * 1e3:.2f} mm mean, "
                f"{_stage()['keysolve'].explained_text(solution.report, 1e3 / scale)}")


CLASSES = (VOCA_OT_character_guess_landmarks, VOCA_OT_character_fit, VOCA_OT_character_transfer,
           VOCA_OT_character_drive)
