"""A living face for one clip: what to add beside the speech (blinks, head motion, gaze, a FLAME rig),
computed from the clip's audio at the scene's frame rate.

:class:`LivelinessSettings` crosses from the UI / command line (a frozen dataclass, no RNA);
:func:`check_settings` checks it cheaply on the main thread (paths, ranges); :func:`compute_liveliness`
does the work (audio → :mod:`.prosody` → :mod:`.blink` / :mod:`.head_motion` / :mod:`.gaze`, the FLAME
model → :mod:`..flame.flame_model`) and returns a :class:`Liveliness` of plain arrays that the Blender layer
(``blender/liveliness/writer.py``) writes. Everything off gives ``Liveliness.empty`` and changes nothing.

The Blink shape comes from ``blink_source`` (files, see :func:`.blink.load_blink_shape`), else from
``flame_model`` (VOCA's blink expression), else from the artist's key marked as the blink (Blender).

Contract: numpy + stdlib (+ the core modules named above; no scipy, which Blender's Python lacks); pure
functions, any thread (the worker thread calls :func:`load_assets`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..speech.audio import load_audio
from . import blink, gaze, prosody
from ..flame import flame_model
from . import head_motion as motion

MAX_SHAPE_SLIDERS = 300


@dataclass(frozen=True)
class LivelinessSettings:
    """What to add. ``head_motion`` is the strength (0 = off, 1 = natural); ``blink_source`` a tuple of
    paths (empty: the FLAME model, else the artist's marked key); ``seed`` makes it repeatable."""

    blinks: bool = False
    blink_source: tuple = ()
    head_motion: float = 0.0
    head_smoothness_s: float = motion.SMOOTHNESS_S
    gaze: bool = False
    flame_model: Optional[str] = None
    rig: bool = False
    correctives: bool = True
    shape_sliders: int = 0
    seed: int = 0
    look_at: Optional[str] = None       # name of the object (an empty) the eyes look at (Blender layer)

    @property
    def enabled(self) -> bool:
        return bool(self.blinks or self.head_motion > 0 or self.gaze or self.rig)


@dataclass(frozen=True)
class Liveliness:
    """Per-frame tracks at ``fps`` for ``num_frames`` frames (any may be None when off)."""

    fps: float
    num_frames: int
    blink_shape: Optional[blink.BlinkShape] = None
    blink: Optional[blink.BlinkTrack] = None
    head: Optional[motion.HeadMotion] = None
    gaze: Optional[gaze.Gaze] = None
    model: Optional[flame_model.FlameModel] = None
    correctives: bool = True
    shape_sliders: int = 0

    @property
    def empty(self) -> bool:
        return self.blink is None and self.head is None and self.gaze is None and self.model is None


def check_settings(settings: LivelinessSettings) -> None:
    """Cheap checks before any work (main thread): files exist, values in range.

    Raises
    ------
    InputError
        A missing file, ``--rig`` without a FLAME model, a strength / slider count out of range.
    """
    for path in tuple(settings.blink_source) + ((settings.flame_model,) if settings.flame_model else ()):
        if not os.path.isfile(os.fspath(path)):
            raise InputError(f"'{os.fspath(path)}' was not found. Check the path.")
    if settings.rig and not settings.flame_model:
        raise InputError("A FLAME rig needs the FLAME model (generic_model.pkl): give --flame-model PKL.")
    if not 0 <= settings.head_motion <= motion.MAX_STRENGTH:
        raise InputError(f"Head-motion strength must be within 0..{motion.MAX_STRENGTH:g}, got "
                         f"{settings.head_motion}.")
    if settings.look_at and not settings.gaze:
        raise InputError("A look-at target moves the eyes: add --gaze (or drop --look-at).")
    if not 0 <= settings.shape_sliders <= MAX_SHAPE_SLIDERS or (settings.shape_sliders and not settings.rig):
        raise InputError(f"Face-shape sliders need the rig (--rig) and a count within 0..{MAX_SHAPE_SLIDERS}.")


@dataclass(frozen=True)
class LookAt:
    """A look-at point for the gaze, in head (mesh-local) coordinates, metres.

    ``point`` float [3]; ``eye_centres`` float [2, 3] (left, right) the eyes' pivots; ``pivot`` float [3]
    the point the head turns about (the neck joint with a FLAME rig, the object's origin without).
    """

    point: np.ndarray
    eye_centres: np.ndarray
    pivot: np.ndarray

    def per_frame(self, head: Optional[motion.HeadMotion], num_frames: int) -> np.ndarray:
        """float64 [F, 3]: the point as seen from the turning head, ``R(t)ᵀ (p − c) + c`` (the eyes keep
        looking at it while the head moves)."""
        point = np.asarray(self.point, dtype=np.float64)
        if head is None:
            return np.broadcast_to(point, (num_frames, 3)).copy()
        rot = flame_model.rodrigues(head.rotation[:num_frames])                 # [F, 3, 3]
        return np.einsum("fji,j->fi", rot, point - self.pivot) + self.pivot


@dataclass(frozen=True)
class LivelinessAssets:
    """The slow part, read once in the worker thread: the FLAME model and the Blink shape (or None)."""

    model: Optional[flame_model.FlameModel] = None
    blink_shape: Optional[blink.BlinkShape] = None


def load_assets(settings: LivelinessSettings, template: np.ndarray) -> LivelinessAssets:
    """Read the FLAME model and the Blink shape the settings ask for, checked against ``template`` [V, 3].

    Raises
    ------
    InputError, MeshError, ModelFileError
        From the readers; a model or blink source of another topology (names both vertex counts).
    """
    check_settings(settings)
    template = np.asarray(template, dtype=np.float64)
    model = None
    if settings.flame_model and (settings.rig or (settings.blinks and not settings.blink_source)):
        model = flame_model.load_flame_model(settings.flame_model)
        flame_model.check_topology(model, template.shape[0])
    shape = None
    if settings.blinks and settings.blink_source:
        shape = blink.load_blink_shape(list(settings.blink_source), template)
    elif settings.blinks and model is not None:
        shape = blink.blink_from_flame(model)
    return LivelinessAssets(model, shape)


def compute_liveliness(settings: LivelinessSettings, audio_path, fps: float, num_frames: int,
                       template: np.ndarray, assets: Optional[LivelinessAssets] = None,
                       look_at: Optional[LookAt] = None) -> Liveliness:
    """Tracks for one clip (module docstring), ``num_frames`` frames at ``fps``.

    Parameters
    ----------
    settings : LivelinessSettings
    audio_path : path
        The clip's audio (read with :func:`..speech.audio.load_audio`).
    fps : float
        The scene's frame rate.
    template : float [V, 3]
        The head's rest shape (the model and blink source must have its vertex count).
    assets : LivelinessAssets, optional
        Already read by :func:`load_assets` (else read here).
    look_at : LookAt, optional
        A point the eyes look at (head coordinates); with head motion it is followed from the moving head.

    Raises
    ------
    InputError, AudioError, MeshError, ModelFileError
    """
    check_settings(settings)
    if not settings.enabled:
        return Liveliness(float(fps), int(num_frames))
    assets = load_assets(settings, template) if assets is None else assets
    pros = prosody.analyse(load_audio(audio_path), fps, num_frames)
    track = head = eyes = None
    if settings.blinks:
        track = blink.blink_track(num_frames, fps, pros, seed=settings.seed)
    if settings.head_motion > 0:
        head = motion.head_motion(pros, settings.head_motion, settings.head_smoothness_s, settings.seed)
    if settings.gaze:
        target = None if look_at is None else look_at.per_frame(head, num_frames)
        eyes = gaze.gaze_track(num_frames, fps, seed=settings.seed,
                               eye_centres=None if look_at is None else look_at.eye_centres, target=target)
    return Liveliness(float(fps), int(num_frames), assets.blink_shape, track, head, eyes,
                      assets.model if settings.rig else None, settings.correctives, settings.shape_sliders)


def parse_blink_source(value: Optional[str]) -> tuple:
    """``--blink-source`` text → tuple of paths (several joined by commas: ``l_eyelid.npy,r_eyelid.npy``)."""
    if not value:
        return ()
    return tuple(p.strip() for p in str(value).split(",") if p.strip())


def summary(live: Liveliness) -> Sequence[str]:
    """One line per part, for reports: rate and durations of blinks, head-motion amplitude, saccades."""
    lines = []
    if live.blink is not None:
        b = live.blink
        lines.append(f"blinks: {b.peaks_s.size} ({b.rate_per_minute():.1f}/min), "
                     f"{1e3 * b.durations_s.mean() if b.peaks_s.size else 0:.0f} ms each")
    if live.head is not None:
        deg = np.degrees(live.head.rotation.std(axis=0))
        lines.append(f"head motion: std nod/turn/tilt {deg[0]:.1f}/{deg[1]:.1f}/{deg[2]:.1f}°")
    if live.gaze is not None:
        lines.append(f"gaze: {live.gaze.saccade_s.size} saccades")
    if live.model is not None:
        lines.append(f"FLAME rig from '{live.model.path}'")
    return lines
