"""Add-on preferences: where the user's model files are, each with a checked status message.

Four paths (all optional; empty = the core's rule: ``$VOCA_MODEL_DIR`` or ``~/voca_models``): the VOCA
checkpoint (prefix, one of its files, or its folder), the DeepSpeech v0.1.0 ``output_graph.pb``, the FLAME
template mesh, and a FLAME model ``.pkl`` (only for the built-in emotion presets). Changing a path runs
its cheap check (``check_*``: the checkpoint's small ``.index``, the graph's header and size — never the
491 MB body —, the template's vertex count, the pickle header) and stores the verdict, which
:meth:`VOCA_AddonPreferences.draw` and the side panel show without touching the disk. ``Check model
files`` (:class:`VOCA_OT_check_model_files`) re-runs all checks.

``bl_idname`` is the add-on's top package: ``voca_addon`` from a source checkout, ``bl_ext.<repo>.voca_addon``
when installed as an extension; :data:`ADDON_ID` is derived from this module's own package, so both work.

Contract: main thread (``bpy``). The ``check_*`` functions are plain (no ``bpy``) and return
``(ok, message)``.
"""
# No ``from __future__ import annotations`` here: Blender evaluates the property annotations of
# registered classes, and string annotations would hide names such as module constants from it.

import os
import textwrap
from pathlib import Path
from typing import Optional, Tuple

import bpy
from bpy.props import BoolProperty, StringProperty

from ..core.flame import meshio
from ..core.face import voca
from ..core.models import modelfiles
from ..core.formats import tfbundle
from ..core.errors import VocaError
from . import reporting

ADDON_ID = __package__.rpartition(".")[0]          # the top package: voca_addon or bl_ext.<repo>.voca_addon
GZIP_MAGIC = b"\x1f\x8b"
GRAPHDEF_FIRST_BYTE = 0x0A                          # GraphDef field 1 (node), length-delimited
OFFICIAL_PB_BYTES = 468 << 20                       # about the size of DeepSpeech 0.1.0's graph (491 MB)
PICKLE_FIRST_BYTES = (b"\x80", b"(", b"}", b"]")    # protocol ≥ 2, or protocol 0 / 1 opcodes
FLAME_MODEL_URL = "https://flame.is.tue.mpg.de (register, then download FLAME 2020 / generic_model.pkl)"
CHECKS = ("voca", "deepspeech", "template", "flame_model")
Status = Tuple[bool, str]


def check_voca(path: str) -> Status:
    """The checkpoint resolves and its ``.index`` describes a VOCA model."""
    try:
        prefix = modelfiles.resolve_voca(path or None)
        entries = tfbundle.read_index(prefix)
        dims = voca.infer_dims({name: entry.shape for name, entry in entries.items()})
    except VocaError as exc:
        return False, str(exc)
    return True, f"{prefix}: VOCA model with {dims.num_conditions} speaking styles."


def check_deepspeech(path: str) -> Status:
    """The graph exists and starts like a binary GraphDef (its body is read only when animating)."""
    try:
        pb = modelfiles.resolve_deepspeech(path or None)
        size = pb.stat().st_size
        with open(pb, "rb") as handle:
            head = handle.read(16)
    except (VocaError, OSError) as exc:
        return False, str(exc)
    if pb.suffix.lower() == ".pbmm":
        return False, (f"{pb} is the memory-mapped graph of a later DeepSpeech; VOCA needs v0.1.0's "
                       f"output_graph.pb from {modelfiles.DEEPSPEECH_URL}.")
    if head.startswith(GZIP_MAGIC):
        return False, f"{pb} is a compressed archive; extract models/output_graph.pb from it and choose that."
    if size == 0 or head[0] != GRAPHDEF_FIRST_BYTE:
        return False, (f"{pb} is not a TensorFlow frozen graph. Download it again: "
                       f"{modelfiles.DEEPSPEECH_URL}.")
    note = "" if size >= OFFICIAL_PB_BYTES else " (smaller than the official 491 MB graph: a test model?)"
    return True, f"{pb}: {size / 2**20:.1f} MiB frozen graph{note}; read fully when animating."


def check_template(path: str) -> Status:
    """The template mesh reads and has FLAME's 5023 vertices."""
    try:
        mesh = meshio.read_mesh(modelfiles.resolve_template(path or None))
    except VocaError as exc:
        return False, str(exc)
    if len(mesh.vertices) != 5023:
        return False, (f"{mesh.path} has {len(mesh.vertices)} vertices; VOCA needs 5023 (FLAME). Use "
                       f"{modelfiles.TEMPLATE_URL}.")
    return True, f"{mesh.path}: FLAME template, 5023 vertices."


def check_flame_model(path: str) -> Status:
    """Optional: a FLAME model pickle for the built-in emotion presets."""
    if not path:
        return True, f"Not set: only needed for the built-in emotion presets ({FLAME_MODEL_URL})."
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        return False, f"FLAME model '{p}' was not found. Download it from {FLAME_MODEL_URL}."
    try:
        with open(p, "rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        return False, f"Cannot read '{p}': {exc.strerror}."
    if p.suffix.lower() != ".pkl" or first not in PICKLE_FIRST_BYTES:
        return False, f"'{p}' is not a FLAME model pickle (.pkl). Download it from {FLAME_MODEL_URL}."
    return True, f"{p}: FLAME model (read when emotions are added)."


_CHECKERS = {"voca": check_voca, "deepspeech": check_deepspeech, "template": check_template,
             "flame_model": check_flame_model}


def _abspath(path: str) -> str:
    return bpy.path.abspath(path) if path else ""


def refresh(prefs, which: str) -> None:
    """Run the check of ``which`` and store its verdict on ``prefs``."""
    ok, message = _CHECKERS[which](_abspath(getattr(prefs, f"{which}_path")))
    setattr(prefs, f"{which}_ok", ok)
    setattr(prefs, f"{which}_status", message)


def _updater(which: str):
    return lambda self, _context: refresh(self, which)


def _path(name: str, description: str, which: str):
    return StringProperty(name=name, description=description, subtype="FILE_PATH", update=_updater(which))


class VOCA_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    voca_path: _path("VOCA checkpoint", "gstep_52280.model (prefix, any of its files, or their folder). "
                     "Empty: $VOCA_MODEL_DIR or ~/voca_models", "voca")
    deepspeech_path: _path("DeepSpeech graph", "DeepSpeech v0.1.0 output_graph.pb. "
                           "Empty: $VOCA_MODEL_DIR or ~/voca_models", "deepspeech")
    template_path: _path("FLAME template", "FLAME_sample.ply (5023 vertices). "
                         "Empty: $VOCA_MODEL_DIR or ~/voca_models", "template")
    flame_model_path: _path("FLAME model", "FLAME generic_model.pkl, for the built-in emotion presets "
                            "(optional)", "flame_model")
    voca_ok: BoolProperty()
    voca_status: StringProperty()
    deepspeech_ok: BoolProperty()
    deepspeech_status: StringProperty()
    template_ok: BoolProperty()
    template_status: StringProperty()
    flame_model_ok: BoolProperty()
    flame_model_status: StringProperty()

    def draw(self, context):
        layout = self.layout
        for which in CHECKS:
            col = layout.column(align=True)
            col.prop(self, f"{which}_path")
            draw_status(col, self, which)
        layout.operator(VOCA_OT_check_model_files.bl_idname, icon="FILE_REFRESH")
        layout.operator("voca.fetch_models", icon="URL")    # blender/fetch_operator.py; grey while offline


def draw_status(layout, prefs, which: str, width: int = 90) -> None:
    """The stored verdict of one check as wrapped labels (no disk access)."""
    message = getattr(prefs, f"{which}_status")
    if not message:
        layout.label(text="Not checked yet: press Check model files.", icon="QUESTION")
        return
    icon = "CHECKMARK" if getattr(prefs, f"{which}_ok") else "ERROR"
    for i, line in enumerate(textwrap.wrap(message, width) or [""]):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


def addon_preferences(context=None):
    """This add-on's preferences, or None when it is registered without a preferences entry."""
    prefs = (context or bpy.context).preferences
    addon = prefs.addons.get(ADDON_ID) if prefs is not None else None
    return addon.preferences if addon is not None else None


def model_paths(prefs) -> dict:
    """{voca, deepspeech, template, flame_model: absolute path or None} from the preferences."""
    if prefs is None:
        return dict.fromkeys(CHECKS)
    return {which: _abspath(getattr(prefs, f"{which}_path")) or None for which in CHECKS}


class VOCA_OT_check_model_files(bpy.types.Operator):
    """Check the model files again (after moving or downloading them)"""

    bl_idname = "voca.check_model_files"
    bl_label = "Check model files"

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        if addon_preferences(context) is None:
            return "The add-on has no preferences entry (enable it in Preferences › Add-ons)."
        return None

    poll = classmethod(reporting.poll_by_reason)

    @reporting.guarded
    def execute(self, context):
        prefs = addon_preferences(context)
        for which in CHECKS:
            refresh(prefs, which)
        bad = [which for which in CHECKS if not getattr(prefs, f"{which}_ok")]
        if bad:
            self.report({"WARNING"}, f"Model files with problems: {', '.join(bad)} (see the preferences).")
        else:
            self.report({"INFO"}, "All model files look right.")
        return {"FINISHED"}


__all__ = ["VOCA_AddonPreferences", "VOCA_OT_check_model_files", "ADDON_ID", "addon_preferences",
           "model_paths", "check_voca", "check_deepspeech", "check_template", "check_flame_model",
           "draw_status", "refresh"]
