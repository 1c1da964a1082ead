"""The project's one animation data type: a linear shape-key animation.

Every frame is ``template + bias + weights[f] @ basis`` — exactly VOCA's last layer, whose output is a
linear map of a ``D``-dimensional code. Engines produce a :class:`ShapeKeyAnimation`; the Blender
writer and the exporters consume it.

Contract: numpy only. Units are the template's (FLAME: metres). Arrays are float32 unless noted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError

DEFAULT_FPS = 60.0  # frames per second of VOCA's output


@dataclass(frozen=True)
class Corrections:
    """Corrective shape keys layered over an animation's own keys (lip closures, tucks…).

    They never change the animation's ``weights``: a frame with corrections is
    ``template + bias + weights[f] @ basis + corrections.weights[f] @ corrections.basis``, and
    dropping them (:meth:`ShapeKeyAnimation.exact`) gives the engine's exact result back.

    Attributes
    ----------
    basis : float32 [C, V, 3]
        One displacement shape per corrective key.
    weights : float32 [F, C]
        Per-frame weights (same frames and rate as the animation's ``weights``).
    names : tuple of str, length C
        Shape-key names (e.g. ``("voca_lips_close", "voca_lips_tuck")``), distinct from the
        animation's own names.
    """

    basis: np.ndarray
    weights: np.ndarray
    names: tuple

    def __post_init__(self):
        c = self.basis.shape[0] if self.basis.ndim == 3 else -1
        if self.basis.ndim != 3 or self.basis.shape[2] != 3:
            raise InputError(f"correction basis must be [keys, vertices, 3], got {self.basis.shape}")
        if self.weights.ndim != 2 or self.weights.shape[1] != c:
            raise InputError(f"correction weights must be [frames, {c}], got {self.weights.shape}")
        names = tuple(str(n) for n in self.names)
        if len(names) != c or len(set(names)) != c:
            raise InputError(f"{len(names)} correction names (distinct) needed for {c} keys")
        object.__setattr__(self, "names", names)


@dataclass(frozen=True)
class ShapeKeyAnimation:
    """A mesh animation as ``template + bias + weights @ basis``.

    Attributes
    ----------
    basis : float32 [D, V, 3]
        One displacement shape per code dimension (VOCA: the decoder's weight rows).
    bias : float32 [V, 3]
        Constant displacement added to every frame (VOCA: the decoder's bias).
    weights : float32 [F, D]
        Per-frame coefficients of ``basis`` (VOCA: the 50-d expression code).
    fps : float
        Frames per second of ``weights``.
    template : float32 [V, 3]
        The neutral mesh the displacements apply to.
    names : tuple of str, length D
        A name per basis shape (used for shape-key names).
    """

    basis: np.ndarray
    bias: np.ndarray
    weights: np.ndarray
    fps: float
    template: np.ndarray
    names: tuple = field(default=())
    corrections: Optional[Corrections] = None

    def __post_init__(self):
        d, v = self.basis.shape[0], self.template.shape[0]
        if self.basis.shape != (d, v, 3) or self.bias.shape != (v, 3):
            raise InputError(
                f"animation shapes disagree: basis {self.basis.shape}, bias {self.bias.shape}, "
                f"template {self.template.shape}")
        if self.weights.ndim != 2 or self.weights.shape[1] != d:
            raise InputError(f"weights must be [frames, {d}], got {self.weights.shape}")
        if not self.fps > 0:
            raise InputError(f"fps must be positive, got {self.fps}")
        names = tuple(self.names) if self.names else tuple(f"voca_{k:03d}" for k in range(d))
        if len(names) != d:
            raise InputError(f"{len(names)} names for {d} basis shapes")
        object.__setattr__(self, "names", names)
        c = self.corrections
        if c is not None:
            if c.basis.shape[1] != v or c.weights.shape[0] != self.weights.shape[0]:
                raise InputError(
                    f"corrections {c.basis.shape} / {c.weights.shape} do not fit the animation "
                    f"({v} vertices, {self.weights.shape[0]} frames)")
            if set(c.names) & set(names):
                raise InputError(f"correction names {sorted(set(c.names) & set(names))} clash with the keys")

    @property
    def num_frames(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.template.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / float(self.fps)

    def vertices(self, frames: Optional[Sequence[int]] = None) -> np.ndarray:
        """Full vertex positions, float32 [F, V, 3] (all frames, or the given frame indices)."""
        idx = slice(None) if frames is None else np.asarray(frames)
        w = self.weights[idx]
        d, v = self.basis.shape[:2]
        flat = w.astype(np.float32) @ self.basis.reshape(d, v * 3)        # [F, V*3]
        c = self.corrections
        if c is not None and c.basis.shape[0]:
            flat += c.weights[idx].astype(np.float32) @ c.basis.reshape(c.basis.shape[0], v * 3)
        return flat.reshape(-1, v, 3) + (self.template + self.bias)[None]

    def exact(self) -> "ShapeKeyAnimation":
        """The animation without its corrections: the engine's exact result."""
        if self.corrections is None:
            return self
        return ShapeKeyAnimation(self.basis, self.bias, self.weights, self.fps, self.template, self.names)

    def with_corrections(self, corrections: Optional[Corrections]) -> "ShapeKeyAnimation":
        """The same animation with ``corrections`` (or none) layered over it."""
        return ShapeKeyAnimation(self.basis, self.bias, self.weights, self.fps, self.template, self.names,
                                 corrections)

    def resampled(self, fps: float) -> "ShapeKeyAnimation":
        """The same motion sampled at ``fps`` by linear interpolation of the weights.

        Because frames are linear in the weights, interpolating weights equals interpolating
        vertices. Frame ``i`` of the result is at time ``i / fps``; the duration is kept
        (``round(duration * fps)`` frames, at least 1).
        """
        if not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if fps == self.fps:
            return self
        n_out = max(1, int(round(self.duration_s * fps)))
        t_out = np.arange(n_out) / float(fps)
        t_in = np.arange(self.num_frames) / float(self.fps)

        def resample(weights):
            w = np.empty((n_out, weights.shape[1]), np.float32)
            for k in range(weights.shape[1]):                               # D ≤ ~100 columns
                w[:, k] = np.interp(t_out, t_in, weights[:, k])
            return w

        c = self.corrections
        corrections = None if c is None else Corrections(c.basis, resample(c.weights), c.names)
        return ShapeKeyAnimation(self.basis, self.bias, resample(self.weights), float(fps), self.template,
                                 self.names, corrections)

    def save_npz(self, path, with_vertices: bool = True) -> None:
        """Write the CLI's ``.npz`` (keys vertices, weights, basis, bias, template, fps, names).

        ``weights`` are always the engine's exact weights; corrections, when present, are kept apart as
        ``correction_basis`` [C, V, 3], ``correction_weights`` [F, C] and ``correction_names``, and
        ``vertices`` include them.
        """
        arrays = dict(weights=self.weights, basis=self.basis, bias=self.bias,
                      template=self.template, fps=np.float64(self.fps), names=np.array(self.names))
        if self.corrections is not None:
            arrays.update(correction_basis=self.corrections.basis,
                          correction_weights=self.corrections.weights,
                          correction_names=np.array(self.corrections.names))
        if with_vertices:
            arrays["vertices"] = self.vertices().astype(np.float32)
        np.savez(path, **arrays)


def factorize(vertices: np.ndarray, template: np.ndarray, fps: float = DEFAULT_FPS,
              tolerance: float = 1e-6, max_rank: Optional[int] = None) -> ShapeKeyAnimation:
    """Turn per-frame meshes into a :class:`ShapeKeyAnimation` of the smallest rank that fits.

    ``bias`` is the mean displacement; the basis comes from an SVD of the centred displacements. The
    rank is the smallest for which every coordinate of every frame is within ``tolerance`` (template
    units) of the input, capped at ``max_rank``. (Per coordinate, like the OBJ rounding of VOCA's
    output files, 0.5 µm, which the SVD spreads to ~0.9 µm; per-vertex distances are up to √3× that.)

    Parameters
    ----------
    vertices : float [F, V, 3]
    template : float [V, 3]
    tolerance : float
        Largest allowed per-coordinate error (metres for FLAME).
    """
    vertices = np.asarray(vertices, np.float64)
    template = np.asarray(template, np.float64)
    if vertices.ndim != 3 or vertices.shape[1:] != template.shape or template.shape[-1] != 3:
        raise InputError(f"frames {vertices.shape} do not match the template {template.shape}")
    f, v, _ = vertices.shape
    disp = (vertices - template[None]).reshape(f, v * 3)
    mean = disp.mean(axis=0)
    u, s, vt = np.linalg.svd(disp - mean, full_matrices=False)
    cap = min(len(s), max_rank if max_rank is not None else len(s))
    residual = disp - mean                                                  # [F, V*3]
    rank = cap
    for r in range(cap + 1):
        if r:
            residual -= np.outer(u[:, r - 1] * s[r - 1], vt[r - 1])
        if np.abs(residual).max() <= tolerance:
            rank = r
            break
    basis = vt[:rank].reshape(rank, v, 3).astype(np.float32)
    weights = (u[:, :rank] * s[:rank]).astype(np.float32)
    return ShapeKeyAnimation(basis, mean.reshape(v, 3).astype(np.float32), weights, float(fps),
                             template.astype(np.float32))
