"""The scene's VOCA settings (``scene.voca``) and their translation into :class:`.pipeline.AnimateSettings`.

``scene.voca`` is saved with the .blend file: audio file, speaking style (one VOCASET subject or a blend
of the eight), emotion and its strength / source, start frame, write mode, plus the progress of a
running job. :func:`settings_from_scene` is the only place where these properties become core-side
settings (a frozen dataclass; the core never sees RNA).

``emotion`` is a string with suggestions (the object's emotion keys and the built-in preset names)
rather than an enum: a dynamic enum stores an index, so its choice would silently change whenever the
list changes with the active object; a string keeps the name and is checked when animating.

``is_running`` is computed (read-only) from the one running registry (:mod:`..jobs`: any job on the
scene), so a file saved during a run never reopens "running".

``scene.voca.living`` (:class:`VOCA_PG_living`, registered before ``VOCA_PG_scene``) mirrors
:class:`voca_addon.core.living.liveliness.LivelinessSettings`: blinks, head motion, gaze, FLAME rig; all off
by default. :func:`living_settings` turns it into that dataclass.

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core` and this package's
:mod:`.pipeline`, :mod:`..preferences`, :mod:`voca_addon.blender.emotion.writer`.
"""
# No ``from __future__ import annotations`` here: Blender evaluates the property annotations of
# registered classes, and string annotations would hide names such as module constants from it.

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty,
                       PointerProperty, StringProperty)

from ...core.models import conditions, modelfiles
from ...core.formats import tfbundle
from ...core.face import voca
from ...core.living import head_motion as core_head_motion
from ...core.living import liveliness as core_liveliness
from ...core.emotion.emotions import BUILTIN_PRESETS, NEUTRAL
from ...core.errors import InputError, VocaError
from ...core.face.voca import VOCASET_SUBJECTS
from ..emotion import writer as emotion_writer
from . import heads, writer
from ..liveliness import writer as liveliness_writer
from .. import jobs, preferences
from .pipeline import AnimateSettings

DEFAULT_CONDITION = 3               # run_voca.py's default
MAX_BLEND = 8                       # blend sliders (a vector property's size is fixed at registration)
_names_cache: dict = {}             # (prefix, mtimes) → condition names of that checkpoint
_condition_items: list = []         # Blender keeps only pointers to dynamic enum strings: hold them here
MODE_ITEMS = [
    ("shape_keys", "Shape keys", "50 shape keys + 1 bias key with per-frame curves (light, exact)"),
    ("per_frame", "Per frame", "One shape key per frame (heavy; the old add-on's layout, short clips only)"),
]
CHANNEL_ITEMS = [
    ("0", "First", "The first (left) channel, as VOCA's own scripts do"),
    ("1", "Second", "The second (right) channel"),
    ("mix", "Mix", "The mean of all channels"),
]
STYLE_ITEMS = [
    ("SINGLE", "One style", "Speak like one VOCASET subject"),
    ("BLEND", "Blend", "Blend the speaking styles of several subjects"),
]
BUILTIN_EMOTIONS = tuple(name for name in BUILTIN_PRESETS if name != NEUTRAL)


def _mtime(path) -> int:
    return path.stat().st_mtime_ns if path.is_file() else 0


def condition_names(voca_path=None) -> list:
    """Display names of the checkpoint's speaking styles (its ``.conditions.json``, else VOCASET's).

    Reads only the small ``.index`` (and the names file), once per checkpoint version; a checkpoint that
    cannot be read gives VOCASET's eight subjects (the error is shown by the preferences' check).
    """
    try:
        prefix = modelfiles.resolve_voca(voca_path)
        index = prefix.with_name(prefix.name + ".index")
        key = (str(prefix), _mtime(index), _mtime(conditions.conditions_path(prefix)))
        if key not in _names_cache:
            dims = voca.infer_dims({n: e.shape for n, e in tfbundle.read_index(prefix).items()})
            _names_cache.clear()
            _names_cache[key] = conditions.condition_names(prefix, dims.num_conditions)
        return list(_names_cache[key])
    except VocaError:
        return list(VOCASET_SUBJECTS)


def _model_condition_names(context=None) -> list:
    return condition_names(preferences.model_paths(preferences.addon_preferences(context))["voca"])


def _condition_enum_items(self, context):
    items = [(str(k), conditions.style_label(k, name), conditions.style_description(k, name), k)
             for k, name in enumerate(_model_condition_names(context), 1)]
    _condition_items[:] = items
    return _condition_items


def _range_get(props, which: str) -> int:
    stored = props[f"key_frame_{which}_set"] if f"key_frame_{which}_set" in props else -1
    return stored if stored >= 0 else getattr(props.id_data, f"frame_{which}")


def _range_set(props, which: str, value: int) -> None:
    props[f"key_frame_{which}_set"] = int(value)


def _get_running(self) -> bool:
    return jobs.is_running(self.id_data)         # the one running registry (any job on this scene)


def emotion_suggestions(obj) -> list:
    """Emotion names to offer for ``obj``: its emotion keys, then the built-in presets not among them."""
    own = sorted(emotion_writer.emotion_keys(obj))
    return own + [name for name in BUILTIN_EMOTIONS if name not in own]


def _emotion_search(self, context, edit_text):
    text = edit_text.lower()
    return [name for name in emotion_suggestions(context.active_object) if text in name.lower()]


def _not_the_head(self, obj) -> bool:
    """A look-at target: any object except the active one (the head cannot look at itself)."""
    return obj != getattr(bpy.context, "active_object", None)


class VOCA_PG_living(bpy.types.PropertyGroup):
    """The living face of a run (``scene.voca.living``): blinks, head motion, gaze, a FLAME rig.

    Everything is off by default, so a plain run writes the speech only.
    """

    blinks: BoolProperty(name="Blinks", default=False,
                         description="Procedural eye blinks (human rate and timing, favouring the pauses)")
    blink_source: StringProperty(name="Blink shape", subtype="FILE_PATH",
                                 description="Closed-eye shape: a FLAME model .pkl, eyelid deltas .npy/.npz "
                                             "[5023, 3] (several joined by commas are summed) or a closed-eye "
                                             "mesh. Empty: the key marked as blink, else the FLAME model")
    seed: IntProperty(name="Seed", min=0, default=0,
                      description="The same seed gives the same blinks, head motion and gaze")
    head_motion: BoolProperty(name="Head motion", default=False,
                              description="Nods, turns and tilts driven by the speech's loudness and pitch")
    head_strength: FloatProperty(name="Strength", min=0.0, max=core_head_motion.MAX_STRENGTH, default=1.0,
                                 description="Amplitude of the head motion (1 = natural)")
    head_smoothness: FloatProperty(name="Smooth (s)", min=0.0, max=5.0, default=core_head_motion.SMOOTHNESS_S,
                                   precision=3, step=1,
                                   description="Gaussian smoothing of the head motion, in seconds")
    gaze: BoolProperty(name="Eye motion", default=False,
                       description="Saccades and fixations of the eyes")
    look_at: PointerProperty(name="Look at", type=bpy.types.Object, poll=_not_the_head,
                             description="Object (an empty) the eyes look at; empty: they look ahead")
    rig: BoolProperty(name="FLAME rig", default=False,
                      description="An armature (root, neck, jaw, eyes) with FLAME's skinning weights and pose "
                                  "correctives; head motion and gaze are keyed on its bones")
    flame_model: StringProperty(name="FLAME model", subtype="FILE_PATH",
                                description="FLAME generic_model.pkl for the rig and VOCA's blink. Empty: "
                                            "the FLAME model of the preferences")
    correctives: BoolProperty(name="Pose correctives", default=True,
                              description="FLAME's pose corrective shapes, driven by the bones")
    shape_sliders: BoolProperty(name="Face-shape sliders", default=False,
                                description="The first identity components of FLAME as shape keys")
    shape_slider_count: IntProperty(name="Sliders", min=1, max=core_liveliness.MAX_SHAPE_SLIDERS, default=10,
                                    description="How many identity components become sliders")


class VOCA_PG_scene(bpy.types.PropertyGroup):
    """VOCA settings of a scene (``scene.voca``)."""

    audio_path: StringProperty(name="Audio", subtype="FILE_PATH",
                               description="Speech recording to animate (WAV; other formats Blender decodes)")
    channel: EnumProperty(name="Channel", items=CHANNEL_ITEMS, default="0",
                          description="Which channel of a stereo (or multi-channel) recording VOCA listens to")
    style_mode: EnumProperty(name="Style", items=STYLE_ITEMS, default="SINGLE")
    condition: EnumProperty(name="Speaking style", items=_condition_enum_items, default=DEFAULT_CONDITION,
                            description="Which speaking style (training subject or label) VOCA imitates")
    blend_weights: FloatVectorProperty(name="Style weights", size=MAX_BLEND, min=0.0, max=1.0,
                                       default=tuple(float(i == DEFAULT_CONDITION)
                                                     for i in range(1, len(VOCASET_SUBJECTS) + 1)),
                                       description="Weight of each subject's style (normalised to sum 1)")
    emotion: StringProperty(name="Emotion", search=_emotion_search, search_options={"SUGGESTION", "SORT"},
                            description="Emotion keyed over the clip: an emotion key of the head, or a "
                                        "built-in preset (needs the FLAME model). Empty: none")
    strength: FloatProperty(name="Intensity", min=0.0, max=emotion_writer.SLIDER_MAX, default=1.0,
                            description="Peak value of the emotion key")
    emotion_source: StringProperty(name="Emotion source", subtype="FILE_PATH",
                                   description="FLAME model .pkl (built-in presets), .npy/.npz offsets, or a "
                                               "folder of target meshes (with neutral.obj/.ply). Empty: "
                                               "the FLAME model of the preferences")
    emotion_neutral: StringProperty(name="Neutral mesh", subtype="FILE_PATH",
                                    description="The neutral mesh target meshes were sculpted from "
                                                "(empty: neutral.obj/.ply in the source folder)")
    ease_frames: IntProperty(name="Ease (frames)", min=1, max=1000, default=12,
                             description="Frames the emotion takes to rise and to fall")
    use_scene_start: BoolProperty(name="Start at scene start", default=True,
                                  description="Start the animation and the sound at the scene's first frame")
    start_frame: IntProperty(name="Start frame", min=0, max=writer.MAX_FRAME, default=1)
    mode: EnumProperty(name="Write as", items=MODE_ITEMS, default="shape_keys")
    # From / To follow the scene's frame range until the artist sets them (stored -1: not set).
    key_frame_start_set: IntProperty(default=-1, options={"HIDDEN"})
    key_frame_end_set: IntProperty(default=-1, options={"HIDDEN"})
    key_frame_start: IntProperty(name="From", min=0, max=writer.MAX_FRAME,
                                 get=lambda self: _range_get(self, "start"),
                                 set=lambda self, value: _range_set(self, "start", value),
                                 description="First frame of the emotion keyed over a range (default: the "
                                             "scene's start)")
    key_frame_end: IntProperty(name="To", min=0, max=writer.MAX_FRAME,
                               get=lambda self: _range_get(self, "end"),
                               set=lambda self, value: _range_set(self, "end", value),
                               description="Last frame of the emotion keyed over a range (default: the "
                                           "scene's end)")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    progress_stage: StringProperty(name="Stage")
    is_running: BoolProperty(name="Running", get=_get_running)
    living: PointerProperty(type=VOCA_PG_living, name="Living face")

    @classmethod
    def register(cls):
        bpy.types.Scene.voca = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Scene.voca


def _abspath(path: str):
    return bpy.path.abspath(path) if path else None


def condition_of(props, num_conditions: int = MAX_BLEND):
    """The speaking style: an int (1-based), or {style: weight} of the model's non-zero blend weights."""
    if props.style_mode == "SINGLE":
        return int(props.condition)
    weights = list(props.blend_weights)[:num_conditions]
    return {i: float(w) for i, w in enumerate(weights, 1) if w > 0}


def _paths(text: str) -> tuple:
    """Absolute paths of a path field holding one path or several joined by commas."""
    return tuple(_abspath(p) for p in core_liveliness.parse_blink_source(text))


def _decimal(value: float) -> float:
    """A float property's value as typed (RNA stores float32: 0.08 reads back 0.07999999821)."""
    return round(float(value), 6)


def marked_blink(obj):
    """The name of ``obj``'s shape key marked as the blink (:func:`voca_addon.blender.liveliness.writer.mark_as_blink`), or None."""
    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    name = key.get(liveliness_writer.MARKED_BLINK) if key is not None else None
    return str(name) if name and key.key_blocks.get(name) is not None else None


def blink_shape_of(living, prefs, obj) -> str:
    """Where a run's blink shape comes from (reads properties only), in the core's order: 'source' (the
    blink-shape field), 'flame' (VOCA's blink from the FLAME model, always so with the rig), 'marked' (the
    head's key marked as blink), or '' (none: blinks would be refused)."""
    if living.blink_source.strip():
        return "source"
    model = flame_model_of(living, prefs)
    if model and (living.rig or marked_blink(obj) is None):
        return "flame"
    return "marked" if marked_blink(obj) is not None else ""


def flame_model_of(living, prefs):
    """The FLAME model: the sub-panel's path, else the preferences' (absolute), else None."""
    return _abspath(living.flame_model) or preferences.model_paths(prefs)["flame_model"]


NO_BLINK_SHAPE = ("Blinks need a shape: choose a blink shape file, set the FLAME model, or mark your "
                  "closed-eye key (Mark as blink).")
NO_FLAME_MODEL = "The FLAME rig needs the FLAME model: set it under FLAME rig or in the add-on's preferences."


def living_problem(living, prefs, obj=None):
    """Why the Living face settings cannot run, in the panel's words (reads properties only), or None."""
    if living.blinks and not blink_shape_of(living, prefs, obj):
        return NO_BLINK_SHAPE
    if living.rig and not flame_model_of(living, prefs):
        return NO_FLAME_MODEL
    return None


def living_settings(scene, prefs, obj=None) -> core_liveliness.LivelinessSettings:
    """``scene.voca.living`` as :class:`~voca_addon.core.living.liveliness.LivelinessSettings`.

    Everything off gives the disabled settings, whose run removes an earlier run's living face (as a
    plain command-line re-run does). The FLAME model is passed only where it is used (the rig, or the
    blink when there is neither a blink source nor a key marked as blink), so an unused, stale model
    path never refuses a run. The look-at target counts only with eye motion on.

    Raises
    ------
    InputError
        Blinks with no shape to use, a rig without a FLAME model (:func:`living_problem`).
    """
    living = scene.voca.living
    problem = living_problem(living, prefs, obj)
    if problem:
        raise InputError(problem)
    shape = blink_shape_of(living, prefs, obj) if living.blinks else ""
    needs_model = living.rig or shape == "flame"
    return core_liveliness.LivelinessSettings(
        blinks=living.blinks, blink_source=_paths(living.blink_source) if shape == "source" else (),
        head_motion=_decimal(living.head_strength) if living.head_motion else 0.0,
        head_smoothness_s=_decimal(living.head_smoothness), gaze=living.gaze,
        flame_model=flame_model_of(living, prefs) if needs_model else None, rig=living.rig,
        correctives=living.correctives,
        shape_sliders=int(living.shape_slider_count) if living.rig and living.shape_sliders else 0,
        seed=int(living.seed),
        look_at=living.look_at.name if living.gaze and living.look_at is not None else None)


def settings_from_scene(scene, prefs, obj=None) -> AnimateSettings:
    """The run's settings from ``scene.voca`` and the add-on preferences (``prefs`` may be None).

    The emotion's source: none when ``obj`` already has an emotion key of that name (it is keyed as it
    is), else ``scene.voca.emotion_source``, else the preferences' FLAME model (built-in presets).
    """
    props = scene.voca
    paths = preferences.model_paths(prefs)
    emotion = props.emotion.strip() or None
    source = None
    if emotion is not None and emotion not in emotion_writer.emotion_keys(obj):
        source = _abspath(props.emotion_source) or paths["flame_model"]
    return AnimateSettings(
        audio_path=_abspath(props.audio_path) or "",
        voca_path=paths["voca"], deepspeech_path=paths["deepspeech"], template_path=paths["template"],
        condition=condition_of(props, len(condition_names(paths["voca"]))), emotion=emotion, emotion_source=source,
        strength=float(props.strength), start_frame=None if props.use_scene_start else int(props.start_frame),
        mode=props.mode, ease_frames=int(props.ease_frames), emotion_neutral=_abspath(props.emotion_neutral),
        channel="mix" if props.channel == "mix" else int(props.channel),
        head_rest=heads.rest_shape(obj) if obj is not None and obj.type == "MESH" else None,
        liveliness=living_settings(scene, prefs, obj))


__all__ = ["VOCA_PG_living", "VOCA_PG_scene", "settings_from_scene", "living_settings", "blink_shape_of",
           "flame_model_of", "marked_blink", "living_problem", "condition_of", "condition_names", "emotion_suggestions"]
