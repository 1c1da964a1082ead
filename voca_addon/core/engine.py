"""The VOCA pipeline: audio → DeepSpeech features → VOCA → :class:`ShapeKeyAnimation`.

This is the one entry point the CLI, the Blender operators and the benchmark call. It runs in any
thread (it never touches Blender) and reports progress through an optional callback; raising from
the callback cancels the run.

Contract: numpy only (scipy is not needed here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

import numpy as np

from .speech import audio as audio_mod
from .speech import deepspeech, features
from .face import voca
from .animation.shapekeys import DEFAULT_FPS, ShapeKeyAnimation
from .errors import InputError

Condition = Union[int, Mapping[int, float]]
Progress = Optional[Callable[[float, str], None]]


@dataclass(frozen=True)
class SpeechFeatures:
    """DeepSpeech output for one clip.

    logits : float32 [T, 29] at 50 steps per second; windows : float32 [F, 16, 29] at ``fps``.
    """
    logits: np.ndarray
    windows: np.ndarray
    fps: float

    def save_npz(self, path) -> None:
        np.savez(path, logits=self.logits, windows=self.windows, fps=np.float64(self.fps))

    @staticmethod
    def load_npz(path) -> "SpeechFeatures":
        from .errors import InputError as _E
        try:
            with np.load(path) as z:
                return SpeechFeatures(z["logits"].astype(np.float32), z["windows"].astype(np.float32),
                                      float(z["fps"]))
        except (OSError, KeyError, ValueError) as e:
            raise _E(f"'{path}' is not a features file written by 'voca_addon features' ({e})") from None


def _report(progress: Progress, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(fraction, stage)


def speech_features(source: Union[str, "audio_mod.Audio"], model: deepspeech.DeepSpeechModel,
                    fps: float = DEFAULT_FPS, progress: Progress = None) -> SpeechFeatures:
    """Audio file (or loaded :class:`~voca_addon.core.speech.audio.Audio`) → VOCA's speech windows.

    Follows VOCA's ``audio_handler``: channel 0, resample to 16 kHz, int16, MFCC, DeepSpeech,
    interpolate 50 → ``fps`` over ``round(duration · fps)`` frames, 16-frame windows.
    """
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    clip = audio_mod.load_audio(source) if not isinstance(source, audio_mod.Audio) else source
    _report(progress, 0.0, "features")
    signal = audio_mod.prepare_for_deepspeech(clip)
    inputs = features.deepspeech_input(signal)
    frames = features.num_output_frames(clip.num_samples, clip.rate, fps)
    if frames < 1:
        raise InputError(f"the audio is too short for one frame at {fps} fps ({clip.duration_s:.3f} s)")
    hook = None if progress is None else (lambda f: progress(0.05 + 0.9 * f, "speech recognition network"))
    out = deepspeech.logits(model, inputs, hook)
    per_frame = features.interpolate_logits(out, frames, out_fps=fps)
    return SpeechFeatures(out, features.make_windows(per_frame).astype(np.float32), float(fps))


def animate_windows(windows: np.ndarray, model: voca.VocaModel, template: np.ndarray,
                    condition: Condition = 3, fps: float = DEFAULT_FPS,
                    names: Optional[tuple] = None) -> ShapeKeyAnimation:
    """VOCA on speech windows [F, 16, 29] → the shape-key animation (basis = decoder rows)."""
    template = np.asarray(template, np.float32)
    v = model.dims.num_vertices
    if template.shape != (v, 3):
        raise InputError(f"the template has {len(template)} vertices; this VOCA model needs {v} "
                         "(a FLAME mesh in FLAME's own vertex order)")
    code = voca.encode(model, windows, condition)                          # [F, D]
    basis = model.decoder_weights.reshape(model.dims.code_dim, v, 3)
    return ShapeKeyAnimation(np.asarray(basis), model.decoder_bias.reshape(v, 3).copy(),
                             code.astype(np.float32), float(fps), template,
                             names or tuple(f"voca_{k:03d}" for k in range(model.dims.code_dim)))


def run(audio_path, ds_model: deepspeech.DeepSpeechModel, voca_model: voca.VocaModel,
        template: np.ndarray, condition: Condition = 3, fps: float = DEFAULT_FPS,
        progress: Progress = None) -> ShapeKeyAnimation:
    """The whole pipeline for one audio file."""
    feats = speech_features(audio_path, ds_model, fps, progress)
    anim = animate_windows(feats.windows, voca_model, template, condition, fps)
    _report(progress, 1.0, "done")
    return anim
