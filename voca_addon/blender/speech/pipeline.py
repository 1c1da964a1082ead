"""Animate a head from an audio file: the one UI-free path the operator and the headless command share.

Steps, each with its thread rule::

    validate_settings(settings)            any thread, no bpy: cheap file / option checks
    check_target(scene, obj, settings)     main thread: the object and scene can take the animation
    compute(settings, progress)            ANY thread, never touches bpy: models (kept in memory),
                                           template, engine at 60 fps, emotion deltas
    apply(scene, obj, result, settings)    main thread: validates again, then writes

:func:`animate` runs the four synchronously (headless, ``execute``); :class:`AnimateJob` runs
:func:`compute` in a worker thread that only puts ``("PROGRESS", fraction, stage)``, ``("DONE", result)``
or ``("ERROR", exception)`` on a queue; :meth:`AnimateJob.cancel` makes the next progress call raise
:class:`Cancelled`. User errors raise :class:`~voca_addon.core.errors.VocaError` subclasses; whatever can be
refused is refused before the scene changes.

What :func:`apply` writes: the add-on's sound strip at the start frame, the speech animation
(:func:`.writer.write_animation`, resampled to the scene's rate, first frame = the strip's first frame), the
emotion key keyed 0 → strength → 0 over the clip with ``ease_frames`` ramps, the lip closures
(:func:`voca_addon.blender.articulation.writer.write_articulation`: the phone track of ``settings.phones``, found by
:mod:`voca_addon.blender.articulation.phones` in a second worker thread while the engine runs), and the scene's frame range
set to exactly the clip.

Emotions. ``emotion`` names the emotion; ``emotion_source`` says where its delta comes from, by the rule
of :mod:`voca_addon.core.emotion.sources` (FLAME model .pkl, delta .npy/.npz, a folder or one mesh of
targets with ``emotion_neutral``); ``None`` keys the object's own emotion key of that name (made earlier
by Add emotions, or an artist key marked as an emotion).

Contract: :func:`validate_settings`, :func:`compute` and :class:`AnimateJob` use
numpy and :mod:`voca_addon.core` only; the rest runs on Blender's main thread. Units: template units
(FLAME: metres); frames are scene frames.
"""
from __future__ import annotations

import math
import numbers
import os
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

import numpy as np

from ...core.speech import audio, wavstream
from ...core.emotion import sources as emotion_sources
from ...core.flame import meshio
from ...core import engine
from ...core.models import modelfiles
from ...core.emotion import emotions as core_emotions
from ...core.animation.shapekeys import DEFAULT_FPS, ShapeKeyAnimation
from ...core.emotion.emotions import Emotion
from ...core.living import liveliness as core_liveliness
from ...core.errors import AudioError, InputError, MeshError, VocaError
from .. import compat, transaction
from ..emotion import writer as emotion_writer
from . import writer
from ..liveliness import writer as liveliness_writer
from ..articulation import phones as articulation_phones, writer as articulation_writer
from ..worker import Cancelled, WorkerJob

PREFIX = "VOCA"                     # key / action / slot name prefix (the writer's)
MODES = writer.MODES
HEAD_NAME = "FLAME head"

Condition = Union[int, Mapping[int, float]]
Progress = Optional[Callable[[float, str], None]]


@dataclass(frozen=True)
class AnimateSettings:
    """Everything one run needs, built from Blender properties or command-line flags (no RNA inside).

    Paths are plain absolute strings; ``None`` model paths fall back to ``$VOCA_MODEL_DIR`` /
    ``~/voca_models`` (:mod:`voca_addon.core.models.modelfiles`). ``condition``: 1-based VOCASET subject, or
    {subject: weight} for a blend. ``start_frame`` None = the scene's start. ``strength``: the emotion's
    peak value (0 … 2). ``ease_frames``: length of the emotion's rise and fall.
    """

    audio_path: str
    voca_path: Optional[str] = None
    deepspeech_path: Optional[str] = None
    template_path: Optional[str] = None
    condition: Condition = 3
    emotion: Optional[str] = None
    emotion_source: Optional[str] = None
    strength: float = 1.0
    start_frame: Optional[int] = None
    mode: str = "shape_keys"
    ease_frames: int = 12
    emotion_neutral: Optional[str] = None
    channel: Union[int, str] = 0                    # audio channel from 0, or 'mix' (audio.select_channel)
    head_rest: Optional[np.ndarray] = None          # float [5023, 3]: an existing head's rest shape, used as
                                                    # the template (then no template file is needed)
    liveliness: Optional[core_liveliness.LivelinessSettings] = None  # blinks, head, gaze, rig; None: untouched
    phones: Optional[articulation_phones.PhoneRequest] = None  # lip closures' phone track; None: no closures


@dataclass(frozen=True)
class ComputeResult:
    """What :func:`compute` hands to :func:`apply`.

    animation : ShapeKeyAnimation at 60 fps; template : the template mesh; emotion : the emotion loaded
    from ``settings.emotion_source`` (None without a source).
    """

    animation: ShapeKeyAnimation
    template: meshio.Mesh
    emotion: Optional[Emotion] = None
    liveliness: Optional[core_liveliness.LivelinessAssets] = None   # read for settings.liveliness
    phones: Optional[articulation_phones.PhoneOutcome] = None        # settings.phones' track (or why none)


@dataclass(frozen=True)
class ApplyReport:
    """What :func:`apply` wrote: the writer's report, the sound strip, the emotion key (or None)."""

    write: writer.WriteReport
    strip_name: Optional[str]             # None when this Blender build has no audio (compat.HAS_AUDIO)
    emotion_key: Optional[str]
    liveliness: tuple = ()                # one line per living-face part written
    articulation: tuple = ()              # lip closures: what was done, or why not (one line each)

    def summary(self) -> str:
        w = self.write
        text = (f"VOCA: {w.frames} frames at {w.fps:g} fps on frames {w.frame_start}–{w.frame_end}, "
                f"{len(w.key_names)} keys")
        text += (f", emotion '{self.emotion_key}'" if self.emotion_key else "")
        return text + "".join(f"; {line}" for line in self.liveliness + self.articulation)

    @property
    def warning(self) -> Optional[str]:
        """One line for the artist when something was left out (the sound, on a build without audio)."""
        return compat.NO_AUDIO_MESSAGE if self.strip_name is None else None


# ---------------------------------------------------------------------------- validation (any thread)

def validate_settings(settings: AnimateSettings) -> None:
    """Cheap checks of files and options (no model is read). Raises a VocaError naming the problem."""
    _check_audio(settings.audio_path)
    modelfiles.check_model_files(settings.voca_path, settings.deepspeech_path, settings.template_path,
                                 need_template=settings.head_rest is None)     # all missing files at once
    _check_condition(settings.condition)
    if settings.mode not in MODES:
        raise InputError(f"Unknown mode '{settings.mode}'; choose one of {', '.join(MODES)}.")
    strength = settings.strength
    if not (isinstance(strength, numbers.Real) and math.isfinite(strength)
            and 0.0 <= strength <= emotion_writer.SLIDER_MAX):
        raise InputError(f"The emotion strength must be between 0 and {emotion_writer.SLIDER_MAX:g}, "
                         f"got {strength!r}.")
    start = settings.start_frame
    if start is not None and (isinstance(start, bool) or not isinstance(start, numbers.Integral)
                              or not 0 <= start <= writer.MAX_FRAME):
        raise InputError(f"The start frame must be a whole number from 0 to {writer.MAX_FRAME}, got {start!r}.")
    if not (isinstance(settings.ease_frames, numbers.Integral) and settings.ease_frames >= 1):
        raise InputError(f"The emotion ease must be at least 1 frame, got {settings.ease_frames!r}.")
    if settings.emotion is not None:
        _check_emotion(settings)
    if settings.liveliness is not None:
        core_liveliness.check_settings(settings.liveliness)
    articulation_phones.check_request(settings.phones, settings.audio_path)


def _check_audio(path) -> None:
    if not path:
        raise AudioError("No audio file chosen. Choose a .wav file with speech.")
    audio.check_audio_path(path)


def _check_condition(condition) -> None:
    if isinstance(condition, bool) or not isinstance(condition, (numbers.Integral, Mapping)):
        raise InputError(f"The speaking style must be a subject number or {{subject: weight}}, got {condition!r}.")
    items = {condition: 1.0} if isinstance(condition, numbers.Integral) else dict(condition)
    for index, weight in items.items():
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 1:
            raise InputError(f"Speaking style {index!r} is not a subject number (1, 2, …).")
        if not (isinstance(weight, numbers.Real) and math.isfinite(weight) and weight >= 0):
            raise InputError(f"The weight of speaking style {index} must be a number ≥ 0, got {weight!r}.")
    if not sum(items.values()) > 0:
        raise InputError("The style blend has no positive weight: give at least one speaking style a weight > 0.")


def _check_emotion(settings: AnimateSettings) -> None:
    name = settings.emotion
    if not isinstance(name, str) or not name.strip():
        raise InputError("The emotion name is empty; choose an emotion or none.")
    if len(emotion_writer.key_name(name).encode("utf-8")) > emotion_writer.MAX_KEY_NAME:
        raise InputError(f"The emotion name '{name}' is too long for a shape key; shorten it.")
    if settings.emotion_source:
        emotion_sources.source_kind(settings.emotion_source, settings.emotion_neutral, [name])


# ---------------------------------------------------------------------------- compute (any thread)

_MODELS: dict = {}                  # kind → (stamp, model): the last model of each kind, in memory
_MODELS_LOCK = threading.Lock()


def _stamp(paths) -> tuple:
    return tuple((str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)


def _model(kind: str, files: list, load: Callable):
    """The model of ``kind`` read from ``files``; kept until a file changes (size or mtime)."""
    stamp = _stamp(files)
    with _MODELS_LOCK:
        cached = _MODELS.get(kind)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        model = load()
        _MODELS[kind] = (stamp, model)
        return model


def clear_model_cache() -> None:
    """Forget the models kept in memory (the on-disk cache of :mod:`.modelfiles` stays)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def load_models(settings: AnimateSettings) -> tuple:
    """(DeepSpeech model, VOCA model), read once and kept in memory while the files are unchanged."""
    pb = modelfiles.resolve_deepspeech(settings.deepspeech_path or None)
    prefix = modelfiles.resolve_voca(settings.voca_path or None)
    ds = _model("deepspeech", [pb], lambda: modelfiles.load_deepspeech(pb))
    files = [prefix.with_name(prefix.name + s) for s in (".index", ".data-00000-of-00001")]
    return ds, _model("voca", files, lambda: modelfiles.load_voca(prefix))


def compute(settings: AnimateSettings, progress: Progress = None) -> ComputeResult:
    """Models → template → (emotion) → engine at 60 fps. Thread-safe; never touches ``bpy``.

    ``progress(fraction, stage)`` is called between steps and inside the engine; raising from it
    (e.g. :class:`Cancelled`) stops the run.
    """
    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(fraction, stage)

    report(0.0, "loading models")
    ds_model, voca_model = load_models(settings)
    template = (meshio.read_mesh(modelfiles.resolve_template(settings.template_path or None))
                if settings.head_rest is None else meshio.Mesh(np.asarray(settings.head_rest, np.float64),
                                                               np.zeros((0, 3), np.int32), "the head"))
    emotion = None
    if settings.emotion and settings.emotion_source:
        report(0.08, "loading the emotion")
        (emotion,) = emotion_sources.load_emotions(settings.emotion_source, [settings.emotion], settings.emotion_neutral)
        core_emotions.validate([emotion], len(template.vertices))
    assets = None
    if settings.liveliness is not None and settings.liveliness.enabled:
        report(0.09, "loading the FLAME model / blink shape")
        assets = core_liveliness.load_assets(settings.liveliness, template.vertices)
    report(0.1, "speech features")
    clip = (wavstream.open_wav(settings.audio_path, settings.channel)       # a long WAV: read block by block
            or audio.select_channel(audio.load_audio(settings.audio_path), settings.channel))
    phones = articulation_phones.start(settings.phones, settings.audio_path,   # beside DeepSpeech
                                      settings.channel)                  # and VOCA, same channel
    try:
        anim = engine.run(clip, ds_model, voca_model, template.vertices, settings.condition,
                          DEFAULT_FPS, lambda f, stage: report(0.1 + 0.9 * f, stage))
    except BaseException:
        articulation_phones.finish(phones, cancel=True)
        raise
    return ComputeResult(anim, template, emotion, assets, articulation_phones.finish(phones))


class AnimateJob(WorkerJob):
    """:func:`compute` in a daemon worker thread (``voca-animate``); results only through :attr:`messages`.

    Messages: ``("PROGRESS", fraction, stage)``, then one ``("DONE", ComputeResult)`` or
    ``("ERROR", exception)`` (a :class:`Cancelled` after :meth:`cancel`). The worker never touches bpy.
    """

    def __init__(self, settings: AnimateSettings):
        self.settings = settings
        super().__init__(lambda progress: compute(settings, progress), "animate")


# ---------------------------------------------------------------------------- main thread

def start_frame_of(scene, settings: AnimateSettings) -> int:
    return int(scene.frame_start if settings.start_frame is None else settings.start_frame)


def check_target(scene, obj, settings: AnimateSettings) -> None:
    """Main thread, before computing: can ``obj`` in ``scene`` take the animation? Changes nothing."""
    dummy = ShapeKeyAnimation(np.zeros((1, writer.FLAME_VERTICES, 3), np.float32),
                              np.zeros((writer.FLAME_VERTICES, 3), np.float32), np.zeros((1, 1), np.float32),
                              DEFAULT_FPS, np.zeros((writer.FLAME_VERTICES, 3), np.float32))
    writer._validate_write(obj, dummy, start_frame_of(scene, settings), settings.mode, PREFIX)
    if settings.emotion and settings.emotion_source:      # the key's name must be free or ours
        blank = np.zeros((len(obj.data.vertices), 3), np.float32)
        emotion_writer.check_add(obj, [Emotion(settings.emotion, blank, "check")])
    elif settings.emotion:
        emotion_writer.check_keyable(obj, settings.emotion, settings.strength)
    liveliness_writer.check_target(obj, settings.liveliness)


def _plan(scene, obj, result: ComputeResult, settings: AnimateSettings, start: int) -> int:
    """Validate everything :func:`apply` will do; returns the clip's last scene frame."""
    anim = result.animation
    writer._validate_write(obj, anim, start, settings.mode, PREFIX)
    if not 0 <= start <= writer.MAX_FRAME:
        raise InputError(f"The start frame {start} is outside 0 … {writer.MAX_FRAME}.")
    end = start + anim.resampled(writer.scene_fps(scene)).num_frames - 1
    if end > writer.MAX_FRAME:
        raise InputError(f"The animation would end after Blender's last frame {writer.MAX_FRAME}; "
                         "choose an earlier start frame.")
    _check_audio(settings.audio_path)
    if settings.emotion:
        if end <= start:
            raise InputError("The clip is one frame long at this frame rate; an emotion needs two frames or more.")
        core_emotions.ease_curve(start, end, settings.ease_frames, settings.strength)
        if result.emotion is not None:
            emotion_writer.check_add(obj, [result.emotion])
            if emotion_writer.key_name(result.emotion.name) not in emotion_writer.emotion_keys(obj).values():
                return end                  # a new key: nothing on the object can conflict with it
        emotion_writer.check_keyable(obj, settings.emotion, settings.strength)
    return end


def apply(scene, obj, result: ComputeResult, settings: AnimateSettings) -> ApplyReport:
    """Write a computed result onto ``obj`` in ``scene`` (main thread); everything is validated first.

    Raises
    ------
    VocaError
        The scene or object cannot take it (the scene is unchanged then).
    """
    start = start_frame_of(scene, settings)
    end = _plan(scene, obj, result, settings, start)
    live = liveliness_writer.plan(scene, obj, settings.liveliness, result.liveliness, settings.audio_path,
                                  end - start + 1, result.template.vertices)   # checked: nothing written yet
    replaced = articulation_writer.artist_changes(obj)     # the artist's hand edits this re-run replaces
    emotion_key = None
    with transaction.all_or_nothing(scene, [obj]):     # any failure below restores the scene exactly
        strip = writer.add_sound_strip(scene, settings.audio_path, start, head=obj) if compat.HAS_AUDIO else None
        if settings.emotion:            # before the speech keys: a re-run then keeps every key's place
            if result.emotion is not None:
                emotion_writer.add_emotion_keys(obj, [result.emotion])
            emotion_key = emotion_writer.key_emotion(obj, settings.emotion, start, end, settings.ease_frames,
                                                     settings.strength)
        written = writer.write_animation(obj, result.animation, scene, start, settings.mode, PREFIX)
        lively = liveliness_writer.write_liveliness(obj, scene, live, start) if live is not None else []
        closures = articulation_writer.write_articulation(obj, scene, result.animation, written, result.phones,
                                                          replaced)
        writer.set_clip_range(scene, start, end)
    return ApplyReport(written, strip.name if strip else None, emotion_key, tuple(lively), tuple(closures))


def animate(scene, obj, settings: AnimateSettings, progress: Progress = None) -> ApplyReport:
    """validate → check → compute → apply, synchronously (headless use and the operator's execute)."""
    validate_settings(settings)
    check_target(scene, obj, settings)
    return apply(scene, obj, compute(settings, progress), settings)


def target_problem(obj) -> Optional[str]:
    """Why ``obj`` cannot be animated (reads properties only), or None for a usable FLAME head."""
    if obj is None:
        return "Select a FLAME head (5023 vertices) or use Add FLAME head."
    if obj.type != "MESH":
        return f"'{obj.name}' is not a mesh; select a FLAME head or use Add FLAME head."
    count = len(obj.data.vertices)
    if count != writer.FLAME_VERTICES:
        return (f"The mesh '{obj.data.name}' has {count} vertices; VOCA needs {writer.FLAME_VERTICES} "
                "(a FLAME head in FLAME's vertex order) — use Add FLAME head.")
    if obj.mode == "EDIT":
        return f"'{obj.name}' is in Edit Mode; switch to Object Mode."
    return transaction.linked_problem(obj)


def ensure_head(context_or_scene, template_path: Optional[str] = None):
    """A new FLAME head built from the template's arrays (vertex order kept; never Blender's importer).

    Given a context, the head goes to its active collection and becomes the active, only selected
    object; given a scene, it goes to the scene's master collection. Raises a VocaError for a missing
    or unreadable template, or one without FLAME's 5023 vertices.
    """
    mesh = meshio.read_mesh(modelfiles.resolve_template(template_path or None))
    if len(mesh.vertices) != writer.FLAME_VERTICES:
        raise MeshError(f"The template '{mesh.path}' has {len(mesh.vertices)} vertices; VOCA needs "
                        f"{writer.FLAME_VERTICES} (FLAME's topology). Choose FLAME_sample.ply "
                        f"({modelfiles.TEMPLATE_URL}).")
    obj = writer.build_head(HEAD_NAME, mesh.vertices, mesh.faces, context_or_scene.collection)
    view_layer = getattr(context_or_scene, "view_layer", None)
    if view_layer is not None:
        for other in view_layer.objects.selected:
            other.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
    return obj


__all__ = ["AnimateSettings", "ComputeResult", "ApplyReport", "AnimateJob", "Cancelled", "VocaError",
           "validate_settings", "check_target", "compute", "apply", "animate",
           "load_models", "clear_model_cache", "ensure_head", "target_problem", "start_frame_of"]
