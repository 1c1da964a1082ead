"""The "Character" sub-panel: VOCA's motion on any head mesh (fit, transfer, drive its own keys).

Settings live in ``Scene.voca_character`` (:class:`VOCA_PG_character`): the target object, where the
landmark pairs come from (a pairs file, or empties named ``iBUG_<k>`` on the face), and the FLAME
sequence to retarget (an ``infer`` result or any import-sequence input). Operators:

- ``voca.character_fit`` — fit FLAME to the target (:func:`voca_addon.core.character.fit.fit_target`),
  keep the fit on the object (:func:`.character_io.store_fit`) and report the residuals (also drawn in
  the panel);
- ``voca.character_transfer`` — the sequence's motion as shape keys on the target
  (:func:`~voca_addon.core.character.transfer.transfer` → :func:`.writer.write_animation`): Remove,
  re-runs and exports work as on a FLAME head;
- ``voca.character_drive`` — per-frame weights for the target's own keys (ARKit-named ones when present)
  keyed in an add-on-owned action (:func:`.character_writer.drive_keys`); optionally the curves as a
  Live Link Face CSV / JSON.

Each refuses a target it cannot animate safely (:func:`.character_writer.check_target_object`) before
changing anything, and writes inside :func:`.transaction.all_or_nothing` (a failure half-way restores
the object and scene). The work runs in ``execute`` on the main thread (a fit takes 1–4 s; no worker
thread yet, unlike Animate from audio).

Contract: main thread only (``bpy``).
"""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, PointerProperty, StringProperty

import json

from ..core.errors import InputError
from . import character_writer, reporting, transaction, writer
from .panel import _SubPanel

NO_SCIPY = ("the Character tools need scipy, which this Blender's Python lacks: install the extension "
            "zip for your platform (it bundles scipy), or pip install scipy into Blender's Python.")


def _stage():
    """The Character stage's modules, imported on first use: the add-on registers without scipy."""
    try:
        from ..core.animation import sequences
        from ..core.character import arkit, fit as fitting, keysolve, landmarks as lm, transfer
        from ..core.face import meshio
        from . import character_io
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "scipy" or "scipy" in str(exc):
            raise InputError(NO_SCIPY) from None
        raise
    return dict(sequences=sequences, arkit=arkit, fitting=fitting, keysolve=keysolve, lm=lm,
                transfer=transfer, meshio=meshio, io=character_io)


def _mesh_poll(_self, obj) -> bool:
    return obj.type == "MESH"


class VOCA_PG_character(bpy.types.PropertyGroup):
    """Scene settings of the Character sub-panel."""

    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_mesh_poll,
                            description="The character's head mesh to animate")
    landmarks: EnumProperty(name="Landmarks", items=(
        ("FILE", "Pairs file", "A text file of 'flame_vertex target_vertex' lines"),
        ("EMPTIES", "Empties", "Empties named iBUG_0 … iBUG_67 placed on the target's face")), default="FILE")
    pairs_path: StringProperty(name="Pairs", subtype="FILE_PATH", description="Landmark pairs file")
    source_path: StringProperty(name="Sequence", subtype="FILE_PATH",
                                description="FLAME animation to retarget: an infer .npz, a .npy/.npz with "
                                            "vertices [frames, 5023, 3], or a folder of frames")
    curves_path: StringProperty(name="Curves", subtype="FILE_PATH",
                                description="Optional: write the driven keys' curves (.csv Live Link Face, or .json)")

    @classmethod
    def register(cls):
        bpy.types.Scene.voca_character = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Scene.voca_character


def _template(context):
    from . import sequence_io
    from ..core.models import modelfiles
    return _stage()["meshio"].read_mesh(modelfiles.resolve_template(sequence_io._template_pref(context)))


def _target(context):
    obj = context.scene.voca_character.target
    if obj is None:
        raise InputError("pick the target head mesh first.")
    character_writer.check_target_object(obj)
    return obj


def _pairs(context, obj):
    settings, stage = context.scene.voca_character, _stage()
    if settings.landmarks == "EMPTIES":
        return stage["io"].pairs_from_empties(obj, context.scene.objects)
    if not settings.pairs_path:
        raise InputError("choose the landmark pairs file (or switch Landmarks to Empties).")
    return stage["lm"].read_pairs(bpy.path.abspath(settings.pairs_path))


def _motion(context, obj):
    """(the sequence's animation on the target, its fit) — everything checked before any change."""
    settings, stage = context.scene.voca_character, _stage()
    if not settings.source_path:
        raise InputError("choose the FLAME sequence to retarget (Sequence).")
    template = _template(context)
    vertices, faces = stage["io"].mesh_arrays(obj)
    fit = stage["io"].load_fit(obj, vertices, template.faces)
    anim = stage["sequences"].import_sequence(bpy.path.abspath(settings.source_path), template.path)
    return stage["transfer"].transfer(anim, fit, vertices, faces), fit


def residual_text(res: dict) -> str:
    return (f"landmarks {res['landmarks_registered']['mean']:.2f} mm (max {res['landmarks_registered']['max']:.2f}), "
            f"surface {res['surface']['mean']:.2f} mm, scale {res['scale']:.3g} ({res['unit']})")


class VOCA_OT_character_fit(bpy.types.Operator):
    """Fit FLAME to the target head (landmark alignment + non-rigid registration) and keep the fit on it"""

    bl_idname = "voca.character_fit"
    bl_label = "Fit"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def fit():
            obj, stage = _target(context), _stage()
            flame_ids, target_ids = _pairs(context, obj)
            template = _template(context)
            vertices, faces = stage["io"].mesh_arrays(obj)
            result = stage["fitting"].fit_target(template.vertices, template.faces, vertices, faces,
                                                 flame_ids, target_ids)
            stage["io"].store_fit(obj, result, vertices)
            return f"Fitted '{obj.name}': {residual_text(result.residuals)}"
        return reporting.run_action(self, fit)


class VOCA_OT_character_transfer(bpy.types.Operator):
    """Animate the fitted target with the sequence's motion as shape keys (VOCA's keys, same weights)"""

    bl_idname = "voca.character_transfer"
    bl_label = "Transfer"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def run():
            obj = _target(context)
            motion, _ = _motion(context, obj)
            with transaction.all_or_nothing(context.scene, [obj]):
                report = writer.write_animation(obj, motion, context.scene, context.scene.frame_start)
                writer.set_frame_range(context.scene, report.frame_start, report.frame_end)
            return f"'{obj.name}': {len(motion.names)} transferred keys, frames {report.frame_start}-{report.frame_end}"
        return reporting.run_action(self, run)


class VOCA_OT_character_drive(bpy.types.Operator):
    """Key the target's own shape keys (ARKit-named ones when present) to reproduce the sequence's mouth motion"""

    bl_idname = "voca.character_drive"
    bl_label = "Drive Its Keys"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def run():
            obj = _target(context)
            curves = context.scene.voca_character.curves_path
            if curves:                                            # a bad destination: refused before any work
                from ..core import outputs
                outputs.check_output(bpy.path.abspath(curves), "Curves", (".csv", ".json"), overwrite=True)
            stage = _stage()
            names, deltas = stage["io"].rig_keys(obj)
            motion, fit = _motion(context, obj)
            solution = stage["keysolve"].solve_keys(motion, deltas, names)
            scene = context.scene
            with transaction.all_or_nothing(scene, [obj]):
                character_writer.drive_keys(obj, names, solution.weights, motion.fps, scene, scene.frame_start)
                if curves:
                    path = bpy.path.abspath(curves)
                    arkit = stage["arkit"]
                    write = arkit.write_live_link_csv if path.lower().endswith(".csv") else arkit.write_curves_json
                    write(path, solution.weights, names, motion.fps)
            scale = fit.similarity.scale
            return (f"'{obj.name}': {len(names)} keys driven; error {solution.report['mean_error'] / scale * 1e3:.2f} mm "
                    f"mean, {solution.report['explained']:.0%} of the motion explained")
        return reporting.run_action(self, run)


class VOCA_PT_character(_SubPanel, bpy.types.Panel):
    bl_label = "Character"
    bl_idname = "VOCA_PT_character"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.voca_character
        layout.prop(settings, "target")
        layout.prop(settings, "landmarks", expand=True)
        if settings.landmarks == "FILE":
            layout.prop(settings, "pairs_path")
        layout.operator(VOCA_OT_character_fit.bl_idname, icon="MOD_SHRINKWRAP")
        stored = settings.target.get("voca_fit") if settings.target is not None else None
        res = json.loads(stored["residuals"]) if stored is not None else None
        if res:
            layout.label(text=residual_text(res), icon="INFO")
        layout.prop(settings, "source_path")
        row = layout.row(align=True)
        row.operator(VOCA_OT_character_transfer.bl_idname, icon="SHAPEKEY_DATA")
        row.operator(VOCA_OT_character_drive.bl_idname, icon="ACTION")
        layout.prop(settings, "curves_path")


CLASSES = (VOCA_PG_character, VOCA_OT_character_fit, VOCA_OT_character_transfer, VOCA_OT_character_drive,
           VOCA_PT_character)
