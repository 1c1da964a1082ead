"""The VOCA pipeline for several clips at once, with a per-clip outcome: what the batch command runs.

Steps for one group of clips (:func:`animate_group`)::

    per clip   load audio → 16 kHz int16 → MFCC windows [T_b, 494]      (a failing clip is set aside)
    together   DeepSpeech logits, the recurrence shared by the group      (deepspeech_batch.logits_batch)
    per clip   50 → fps interpolation, 16-row windows, VOCA encoder      (engine.animate_windows)

Each clip's :class:`~voca_addon.core.animation.shapekeys.ShapeKeyAnimation` equals that of
:func:`voca_addon.core.engine.run` on the clip alone, to float32 rounding (the BLAS summation order). A
clip that a user error stops (unreadable audio, an out-of-range style) gets its
:class:`~voca_addon.core.errors.VocaError` as its outcome; the others go on.

Contract: numpy only (no bpy, no tensorflow); any thread; the models are read by the caller, once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from . import engine, faults
from .animation.shapekeys import DEFAULT_FPS, ShapeKeyAnimation
from .errors import InputError, VocaError
from .face import voca
from .speech import audio as audio_mod
from .speech import deepspeech, deepspeech_batch, features

Condition = engine.Condition


@dataclass(frozen=True)
class ClipRequest:
    """One clip of a batch: its audio file, its speaking style, and the name its outputs take."""
    name: str
    audio_path: str
    condition: Condition = 3


@dataclass(frozen=True)
class ClipOutcome:
    """What happened to one clip: ``animation`` on success, else ``error`` (a user error's message)."""
    request: ClipRequest
    animation: Optional[ShapeKeyAnimation] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Prepared:
    inputs: np.ndarray          # float32 [T, 494]
    frames: int                 # output frames at fps


def _prepare(request: ClipRequest, fps: float) -> _Prepared:
    """Audio → DeepSpeech inputs and the frame count, as :func:`engine.speech_features` does."""
    clip = audio_mod.load_audio(request.audio_path)
    inputs = features.deepspeech_input(audio_mod.prepare_for_deepspeech(clip))
    frames = features.num_output_frames(clip.num_samples, clip.rate, fps)
    if frames < 1:
        raise InputError(f"the audio is too short for one frame at {fps} fps ({clip.duration_s:.3f} s)")
    return _Prepared(inputs, frames)


def _message(error: VocaError) -> str:
    return " ".join(str(error).split())


def speech_windows(requests: Sequence[ClipRequest], model: deepspeech.DeepSpeechModel,
                   fps: float = DEFAULT_FPS, progress: Optional[Callable[[float], None]] = None) -> list:
    """VOCA's speech windows for every clip; the DeepSpeech recurrence runs once for the whole group.

    Returns
    -------
    list
        Per request, float32 windows [F_b, 16, 29] at ``fps``, or the ``str`` message of the user
        error that stopped that clip.
    """
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    prepared: list = []
    for request in requests:
        try:
            prepared.append(_prepare(request, fps))
        except VocaError as exc:
            prepared.append(_message(exc))
    good = [k for k, p in enumerate(prepared) if isinstance(p, _Prepared)]
    logits = deepspeech_batch.logits_batch(model, [prepared[k].inputs for k in good], progress) if good else []
    out: list = list(prepared)
    for k, clip_logits in zip(good, logits):
        per_frame = features.interpolate_logits(clip_logits, prepared[k].frames, out_fps=fps)
        out[k] = features.make_windows(per_frame).astype(np.float32)
    return out


def animate_group(requests: Sequence[ClipRequest], ds_model: deepspeech.DeepSpeechModel,
                  voca_model: voca.VocaModel, template: np.ndarray, fps: float = DEFAULT_FPS,
                  progress: Optional[Callable[[float], None]] = None) -> List[ClipOutcome]:
    """Animate a group of clips: one shared DeepSpeech recurrence, then VOCA per clip.

    Parameters
    ----------
    requests : sequence of ClipRequest
    template : float32 [V, 3]
        The FLAME template (metres).
    fps : float
        Output frame rate (VOCA: 60).
    progress : callable(fraction) or None
        Called during the recurrence; raising from it cancels the group.

    Returns
    -------
    list of ClipOutcome
        In request order.
    """
    windows = speech_windows(requests, ds_model, fps, progress)
    outcomes = []
    for request, w in zip(requests, windows):
        if isinstance(w, str):
            outcomes.append(ClipOutcome(request, error=w))
            continue
        try:
            anim = engine.animate_windows(w, voca_model, template, request.condition, fps)
        except VocaError as exc:
            outcomes.append(ClipOutcome(request, error=_message(exc)))
        else:
            outcomes.append(ClipOutcome(request, animation=anim))
        faults.point("compute")
    return outcomes


def groups(items: Sequence, size: int) -> List[list]:
    """Split ``items`` into consecutive groups of at most ``size`` (≥ 1)."""
    if size < 1:
        raise InputError(f"the batch size must be at least 1, got {size}")
    return [list(items[k:k + size]) for k in range(0, len(items), size)]

