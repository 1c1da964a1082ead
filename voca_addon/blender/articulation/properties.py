"""The Articulation sub-panel's properties: the head's knobs and the scene's phone source.

* ``Object.voca_articulation`` (:class:`VOCA_PG_articulation`): the *Lip closures* switch and the four knobs
  (speech strength, mouth-close offset, temporal smoothing, closure strength). They belong to the head whose
  animation they shape (two heads keep their own), are saved with it, and every change re-applies them at
  once (:func:`voca_addon.blender.articulation.writer.reapply`: VOCA is not recomputed). The defaults change nothing. Animate
  from audio reads the head's switch (closures on by default) and writes with its knobs.
* ``Scene.voca_phones`` (:class:`VOCA_PG_phones`): where the next run's phone track comes from — an alignment
  file (set by Import alignment, which checks it first), a transcript typed in or a ``.txt`` file; none of
  them: ``AUDIO.txt`` beside the audio, else detection (:mod:`voca_addon.blender.articulation.phones`).

A knob's update callback cannot raise to the artist: what it has to say (a curve edited by hand that it left
alone, a correction key the artist muted, no phone track, a refusal) goes to ``voca_articulation.status``, which
the panel prints. Nothing escapes the callback (Blender would print a raw traceback): a
:class:`~voca_addon.core.errors.VocaError` is the status line as it is, anything else the one line with the
error log's path that the operators report (:func:`voca_addon.blender.reporting.report_error`).

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core` and this package.
"""
# No ``from __future__ import annotations``: Blender evaluates the annotations of registered classes.

import math
from typing import Optional

import bpy
from bpy.props import BoolProperty, FloatProperty, PointerProperty, StringProperty

from ...core.errors import InputError, VocaError
from . import phones as articulation_phones, writer as articulation_writer
from .. import reporting


def reapply_head(obj, scene=None, force: bool = False, strict: bool = False) -> Optional[str]:
    """Re-apply ``obj``'s knobs when it carries a VOCA animation; the status line it leaves (or None).
    ``force``: check every curve (:func:`voca_addon.blender.articulation.writer.reapply`); ``strict``: a
    refusal (:class:`VocaError`) is raised after it became the status line (the Re-apply button)."""
    if not articulation_writer.has_articulation(obj):
        if articulation_writer.transferred(obj):            # a Transfer's keys: say why the knob does nothing
            reason = articulation_writer.no_knobs_reason(obj)
            obj.voca_articulation.status = reason
            if strict:
                raise InputError(reason)
            return reason
        return None
    try:
        status = articulation_writer.reapply(obj, scene, force).status()
    except VocaError as exc:
        obj.voca_articulation.status = str(exc)
        if strict:
            raise
        return str(exc)
    obj.voca_articulation.status = status
    return status or None


KNOBS = ("closure_strength", "speech_strength", "mouth_close", "smoothing_ms")


def _update(self, context) -> None:
    try:
        _apply_knobs(self, context)
    except Exception as exc:                # noqa: BLE001 — from an update callback it would print raw
        reporting.report_error(lambda _kind, text: setattr(self, "status", text), exc, "articulation knob")


def _apply_knobs(self, context) -> None:
    # A value that is not a number (NaN from a script: Blender's min / max let it through) goes back to the
    # knob's default, which re-applies; left in place it would make every later knob refuse.
    bad = [name for name in KNOBS if not math.isfinite(getattr(self, name))]
    for name in bad:
        setattr(self, name, self.bl_rna.properties[name].default)
    if bad:
        labels = ", ".join(self.bl_rna.properties[name].name for name in bad)
        self.status = (f"{labels}: not a number, set back to the default. " + self.status).strip()
        return
    reapply_head(self.id_data, getattr(context, "scene", None))


class VOCA_PG_articulation(bpy.types.PropertyGroup):
    """A head's articulation (``object.voca_articulation``): lip closures and the knobs."""

    closures: BoolProperty(name="Lip closures", default=True, update=_update,
                           description="Close the lips on p/b/m and tuck the lower lip on f/v with two corrective "
                                       "keys (voca_lips_close, voca_lips_tuck), solved with the head's emotion keys at "
                                       "their strength when applied (change an emotion later: press Re-apply "
                                       "or move a knob). Off: VOCA's exact result")
    closure_strength: FloatProperty(name="Closure strength", min=0.0, soft_max=2.0, max=3.0, default=1.0,
                                    update=_update,
                                    description="Scales the corrective keys' weights (1: the lips reach the rest "
                                                "face's contact on p/b/m)")
    speech_strength: FloatProperty(name="Speech strength", min=0.0, soft_max=2.0, max=3.0, default=1.0,
                                   update=_update,
                                   description="Scales VOCA's motion about the rest face (1: VOCA's)")
    mouth_close: FloatProperty(name="Mouth close", soft_min=-1.0, soft_max=1.0, min=-2.0, max=2.0, default=0.0,
                               update=_update,
                               description="Added to the lip-closure key's weight over the whole clip: > 0 "
                                           "closes (1 ≈ 10 mm less mean opening), < 0 opens (0: none)")
    smoothing_ms: FloatProperty(name="Smoothing (ms)", min=0.0, soft_max=200.0, max=500.0, default=0.0,
                                update=_update,
                                description="Temporal smoothing of the motion in milliseconds (0: none)")
    status: StringProperty(name="Status", options={"SKIP_SAVE"},
                           description="What the last re-application had to say")

    @classmethod
    def register(cls):
        bpy.types.Object.voca_articulation = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Object.voca_articulation


class VOCA_PG_phones(bpy.types.PropertyGroup):
    """Where the next Animate from audio gets its phone track (``scene.voca_phones``)."""

    alignment_path: StringProperty(name="Alignment", subtype="FILE_PATH",
                                   description="Phones already aligned to the audio: Praat TextGrid (Montreal "
                                               "Forced Aligner), Rhubarb Lip Sync TSV / JSON, or VOCA's JSON. "
                                               "Empty: transcript or detection (both US English: for another "
                                               "language, align it with MFA and give its TextGrid here)")
    transcript: StringProperty(name="Transcript",
                               description="What is said in the audio (English): the phones are aligned to it, "
                                           "more exactly than detection")
    transcript_path: StringProperty(name="Transcript file", subtype="FILE_PATH",
                                    description="A .txt file with what is said (empty: AUDIO.txt beside the "
                                                "audio, if there is one)")

    @classmethod
    def register(cls):
        bpy.types.Scene.voca_phones = PointerProperty(type=cls)

    @classmethod
    def unregister(cls):
        del bpy.types.Scene.voca_phones


def _abspath(path: str) -> Optional[str]:
    return bpy.path.abspath(path) if path and path.strip() else None


def phone_request(scene, obj) -> Optional[articulation_phones.PhoneRequest]:
    """The run's :class:`~.phones.PhoneRequest`, also with the head's closures off.

    The phone pass runs on every Animate from audio (the audio is known here), whatever the switch, so that
    turning *Lip closures* on afterwards closes the lips at once from the stored track (a re-apply, < 0.1 s)
    instead of finding nothing to work with. Chosen over an on-demand pass when the switch is turned on: that
    one would need the audio again (moved or deleted since), a job and a wait of seconds after a click the
    artist expects to act like the other knobs. The price: with the switch off a run costs what it costs with
    it on — the pass runs in its own worker beside DeepSpeech and VOCA (:func:`voca_addon.blender.articulation.phones.start`),
    cheap from an alignment file, cheaper with a transcript, but detection on 60 s of audio measured +36 % wall
    time, +57 s CPU and +220 MB on the loaded 2-core machine (docs/engine.md). The result with the switch off
    is unchanged (the track is only stored). None only where the property is not registered. The headless
    ``--no-closures`` still skips the pass (no switch to turn later there).
    """
    props = getattr(obj, "voca_articulation", None)
    if props is None:
        return None
    phones = scene.voca_phones
    return articulation_phones.PhoneRequest(alignment_path=_abspath(phones.alignment_path),
                                            transcript=phones.transcript.strip() or None,
                                            transcript_path=_abspath(phones.transcript_path))


CLASSES = (VOCA_PG_articulation, VOCA_PG_phones)

__all__ = ["VOCA_PG_articulation", "VOCA_PG_phones", "phone_request", "reapply_head", "CLASSES"]
