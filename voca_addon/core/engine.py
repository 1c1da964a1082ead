"""The VOCA pipeline: audio → DeepSpeech features → VOCA → :class:`ShapeKeyAnimation`.

This is the one entry point the CLI, the Blender operators and the benchmark call. It runs in any
thread (it never touches Blender) and reports progress through an optional callback
``progress(fraction, stage)``; raising from the callback cancels the run. Stages, in order:
``STAGE_AUDIO``, ``STAGE_MFCC``, ``STAGE_DEEPSPEECH``, ``STAGE_VOCA`` (and ``STAGE_WRITE`` in
:func:`save_animation_npz`).

Memory is bounded whatever the length of the speech: the MFCC, DeepSpeech (``chunk`` steps per block,
see :func:`~voca_addon.core.speech.deepspeech.logits_streamed`) and VOCA (``CHUNK_FRAMES`` windows per
block) run block by block; what is kept per clip is small per second (MFCC steps 8 kB/s, logits 6 kB/s,
per-frame features 7 kB/s, expression code 12 kB/s at 60 fps). Vertices [F, 5023, 3] (3.6 MB/s) are
only ever made in blocks (:func:`save_animation_npz`). A long WAV file is read and converted to
16 kHz and to MFCC block by block (:mod:`~voca_addon.core.speech.wavstream`,
:mod:`~voca_addon.core.speech.blocks16k`, :func:`~voca_addon.core.speech.features.mfcc_stream`).
Other inputs (a loaded ``Audio``, mp3/flac/ogg, short files) are whole in memory as float64 (8 bytes
per sample) while they are converted.

Contract: numpy only (scipy is not needed here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Union

import numpy as np

from .speech import audio as audio_mod
from .speech import blocks16k, deepspeech, features, wavstream
from .face import voca
from .animation.shapekeys import DEFAULT_FPS, ShapeKeyAnimation
from .errors import InputError
from .animation.npzstream import NpzWriter, iter_rows, member_shape

Condition = Union[int, Mapping[int, float]]
Progress = Optional[Callable[[float, str], None]]

STAGE_AUDIO = "reading audio"
STAGE_MFCC = "speech features (MFCC)"
STAGE_DEEPSPEECH = "speech recognition (DeepSpeech)"
STAGE_VOCA = "face motion (VOCA)"
STAGE_WRITE = "writing"
CHUNK_FRAMES = 2048        # VOCA windows per block (34 s at 60 fps; ~4 MB of windows)
CHUNK_WRITE = 256          # vertex frames per block written (15 MB at 5023 vertices)
CENTRE = features.WINDOW // 2  # row of a window that holds its own frame


@dataclass(frozen=True)
class SpeechFeatures:
    """DeepSpeech output for one clip.

    Attributes
    ----------
    logits : float32 [T, 29]
        DeepSpeech logits at 50 steps per second.
    frames : float32 [F, 29]
        The logits interpolated to ``fps`` (one row per output frame). A [F, 16, 29] window array
        (this class's former second field) is accepted and reduced to its centre rows.
    fps : float
        Output frames per second.
    """
    logits: np.ndarray
    frames: np.ndarray
    fps: float

    def __post_init__(self):
        frames = np.asarray(self.frames, np.float32)
        if frames.ndim == 3 and frames.shape[1:] == (features.WINDOW, voca.NUM_FEATURES):
            frames = np.ascontiguousarray(frames[:, CENTRE])
        if frames.ndim != 2 or frames.shape[1] != voca.NUM_FEATURES:
            raise InputError(f"speech features must be [frames, {voca.NUM_FEATURES}], got {frames.shape}")
        object.__setattr__(self, "frames", frames)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def windows(self) -> np.ndarray:
        """VOCA's speech windows, float32 [F, 16, 29], all at once (use :meth:`window_block` for long clips)."""
        return features.make_windows(self.frames)

    def window_block(self, start: int, stop: int) -> np.ndarray:
        """Windows ``start .. stop-1``, float32 [stop - start, 16, 29]."""
        return features.frame_windows(self.frames, start, stop)

    def save_npz(self, path, chunk: int = CHUNK_FRAMES) -> None:
        """Write ``logits`` [T, 29], ``windows`` [F, 16, 29] (in blocks) and ``fps`` to exactly ``path``."""
        blocks = (self.window_block(a, min(a + chunk, self.num_frames)) for a in range(0, self.num_frames, chunk))
        with NpzWriter(path) as z:
            z.add("logits", self.logits)
            z.add("fps", np.float64(self.fps))
            z.add_rows("windows", (self.num_frames, features.WINDOW, voca.NUM_FEATURES), np.float32, blocks)

    @staticmethod
    def load_npz(path, chunk: int = CHUNK_FRAMES) -> "SpeechFeatures":
        """Read a file written by :meth:`save_npz`, the windows block by block (bounded memory)."""
        try:
            with np.load(path) as z:
                logits, fps = z["logits"].astype(np.float32), float(z["fps"])
            shape = member_shape(path, "windows")
            frames = np.empty((shape[0], voca.NUM_FEATURES), np.float32)
            row = 0
            for block in iter_rows(path, "windows", chunk):
                frames[row:row + len(block)] = block[:, CENTRE]
                row += len(block)
            return SpeechFeatures(logits, frames, fps)
        except (OSError, KeyError, ValueError, IndexError, InputError) as e:
            raise InputError(f"'{path}' is not a features file written by 'voca_addon features' ({e})") from None


def _report(progress: Progress, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(fraction, stage)


def speech_features(source: Union[str, "audio_mod.Audio", "wavstream.WavStream"], model: deepspeech.DeepSpeechModel,
                    fps: float = DEFAULT_FPS, progress: Progress = None,
                    chunk: int = deepspeech.CHUNK_STEPS) -> SpeechFeatures:
    """Audio → VOCA's per-frame speech features.

    ``source``: an audio file path (a long plain WAV is read block by block, others are loaded whole,
    channel 0 like VOCA), a loaded :class:`~voca_addon.core.speech.audio.Audio`, or a
    :class:`~voca_addon.core.speech.wavstream.WavStream` (carrying its channel). Follows VOCA's
    ``audio_handler``: one channel, resample to 16 kHz, int16, MFCC, DeepSpeech, interpolate 50 → ``fps``
    over ``round(duration · fps)`` frames. ``chunk``: DeepSpeech steps per block (memory, not the
    result). Progress: 0 → 1 over the stages audio, MFCC, DeepSpeech.
    """
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    _report(progress, 0.0, STAGE_AUDIO)
    inputs, num_samples, rate = _deepspeech_input(source, progress)
    frames = features.num_output_frames(num_samples, rate, fps)
    if frames < 1:
        raise InputError(f"the audio is too short for one frame at {fps} fps ({num_samples / rate:.3f} s)")
    _report(progress, 0.05, STAGE_DEEPSPEECH)
    hook = None if progress is None else (lambda f: progress(0.05 + 0.95 * f, STAGE_DEEPSPEECH))
    out = deepspeech.logits_streamed(model, inputs.rows, inputs.num_steps, chunk, hook)
    per_frame = features.interpolate_logits(out, frames, out_fps=fps)
    return SpeechFeatures(out, per_frame.astype(np.float32), float(fps))


def _deepspeech_input(source, progress: Progress) -> tuple:
    """(DeepSpeech input, original sample count, original rate) of a path, Audio or WavStream.

    A WavStream goes file → 16 kHz int16 blocks → MFCC without the whole signal ever in memory.
    """
    if not isinstance(source, (audio_mod.Audio, wavstream.WavStream)):
        source = wavstream.open_wav(source) or audio_mod.load_audio(source)
    if isinstance(source, wavstream.WavStream):
        source.check()
        _report(progress, 0.01, STAGE_MFCC)
        blocks = blocks16k.iter_blocks(source.mono, source.rate, source.num_samples, source.path, source.channel)
        n16 = blocks16k.output_length(source.num_samples, source.rate)
        return features.DeepSpeechInput.from_blocks(blocks, n16), source.num_samples, source.rate
    signal = blocks16k.prepare_in_blocks(source)
    _report(progress, 0.03, STAGE_MFCC)
    return features.DeepSpeechInput.from_signal(signal), source.num_samples, source.rate


def _animation(code: np.ndarray, model: voca.VocaModel, template: np.ndarray, fps: float,
               names: Optional[tuple]) -> ShapeKeyAnimation:
    v = model.dims.num_vertices
    basis = model.decoder_weights.reshape(model.dims.code_dim, v, 3)
    return ShapeKeyAnimation(np.asarray(basis), model.decoder_bias.reshape(v, 3).copy(),
                             code.astype(np.float32), float(fps), template,
                             names or tuple(f"voca_{k:03d}" for k in range(model.dims.code_dim)))


def _checked_template(model: voca.VocaModel, template) -> np.ndarray:
    template = np.asarray(template, np.float32)
    v = model.dims.num_vertices
    if template.shape != (v, 3):
        raise InputError(f"the template has {len(template)} vertices; this VOCA model needs {v} "
                         "(a FLAME mesh in FLAME's own vertex order)")
    return template


def check_voca_inputs(model: voca.VocaModel, template, condition: Condition) -> np.ndarray:
    """Refuse a template or condition this model cannot use, before any computing.

    Returns the template as float32 [V, 3]. Raises InputError (wrong vertex count, condition out of
    range, a style blend without positive weight).
    """
    template = _checked_template(model, template)
    voca.condition_vector(model, condition)
    return template


def animate_features(feats: SpeechFeatures, model: voca.VocaModel, template: np.ndarray,
                     condition: Condition = 3, names: Optional[tuple] = None, chunk: int = CHUNK_FRAMES,
                     progress: Progress = None) -> ShapeKeyAnimation:
    """VOCA on per-frame speech features, ``chunk`` windows at a time → the shape-key animation.

    Equals :func:`animate_windows` on ``feats.windows``; memory does not grow with the clip beyond the
    code [F, D]. Progress: 0 → 1 in stage ``STAGE_VOCA``.
    """
    template = _checked_template(model, template)
    code = np.empty((feats.num_frames, model.dims.code_dim), np.float32)
    for a in range(0, feats.num_frames, chunk):
        b = min(a + chunk, feats.num_frames)
        code[a:b] = voca.encode(model, feats.window_block(a, b), condition)        # [b - a, D]
        _report(progress, b / feats.num_frames, STAGE_VOCA)
    return _animation(code, model, template, feats.fps, names)


def animate_windows(windows: np.ndarray, model: voca.VocaModel, template: np.ndarray,
                    condition: Condition = 3, fps: float = DEFAULT_FPS,
                    names: Optional[tuple] = None) -> ShapeKeyAnimation:
    """VOCA on speech windows [F, 16, 29] held in memory → the shape-key animation (basis = decoder rows)."""
    template = _checked_template(model, template)
    return _animation(voca.encode(model, windows, condition), model, template, fps, names)


def run(audio_path, ds_model: deepspeech.DeepSpeechModel, voca_model: voca.VocaModel,
        template: np.ndarray, condition: Condition = 3, fps: float = DEFAULT_FPS,
        progress: Progress = None) -> ShapeKeyAnimation:
    """The whole pipeline for one audio file (progress: speech 0 → 0.95, VOCA → 1)."""
    check_voca_inputs(voca_model, template, condition)         # before minutes of DeepSpeech
    speech = None if progress is None else (lambda f, stage: progress(0.95 * f, stage))
    feats = speech_features(audio_path, ds_model, fps, speech)
    face = None if progress is None else (lambda f, stage: progress(0.95 + 0.05 * f, stage))
    anim = animate_features(feats, voca_model, template, condition, progress=face)
    _report(progress, 1.0, "done")
    return anim


def save_animation_npz(anim: ShapeKeyAnimation, path, with_vertices: bool = True,
                       chunk: int = CHUNK_WRITE, progress: Progress = None, phones=None) -> None:
    """Write the CLI's ``.npz`` to exactly ``path``, vertices in blocks of ``chunk`` frames.

    Members: ``weights`` [F, D] (VOCA's exact weights), ``basis`` [D, V, 3], ``bias`` [V, 3],
    ``template`` [V, 3], ``fps``, ``names``; the corrections kept apart (``correction_basis`` [C, V, 3],
    ``correction_weights`` [F, C], ``correction_names``) when ``anim`` has them; the phone track
    ``phones`` (a ``PhoneTrack``: ``phones`` [P], ``phone_times`` [P, 2] s, ``phone_words``,
    ``phone_source``; see :mod:`.animation.npzextras`); and (``with_vertices``) ``vertices`` float32
    [F, V, 3] in metres, corrections included — the same file as :meth:`ShapeKeyAnimation.save_npz`,
    without [F, V, 3] ever in memory. Progress in ``STAGE_WRITE``.
    """
    from .animation import npzextras
    f, v = anim.num_frames, anim.num_vertices

    def blocks():
        for a in range(0, f, chunk):
            b = min(a + chunk, f)
            yield anim.vertices(np.arange(a, b))
            _report(progress, b / f, STAGE_WRITE)
    with NpzWriter(path) as z:
        for name, value in (("weights", anim.weights), ("basis", anim.basis), ("bias", anim.bias),
                            ("template", anim.template), ("fps", np.float64(anim.fps)),
                            ("names", np.array(anim.names))):
            z.add(name, value)
        for name, value in {**npzextras.correction_arrays(anim), **npzextras.phone_arrays(phones)}.items():
            z.add(name, value)
        if with_vertices:
            z.add_rows("vertices", (f, v, 3), np.float32, blocks())
    _report(progress, 1.0, STAGE_WRITE)
