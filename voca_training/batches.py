"""Speech features (computed once with the add-on's engine, cached), training windows and the decoder basis.

* :func:`compute_features` runs :func:`voca_addon.core.engine.speech_features` on every sequence's audio
  and caches the per-frame DeepSpeech logits (float32 [F, 29], 60 fps) under ``<cache>/training-features``,
  one ``.npy`` per sequence named by the SHA-256 of (DeepSpeech graph, samples, rate, fps): the exact
  windows the add-on will feed the trained model. A window is rebuilt as VOCA's (8 zero rows each side).
* :class:`WindowSampler` serves batches: a sample is a frame ``f`` and its ``num_consecutive_frames - 1``
  predecessors (frames before 0 repeat frame 0, as VOCA's ``compute_window_array_idx``); vertices are
  read from the memory-mapped ``data_verts`` per batch and returned as displacements from the subject's
  template. Epoch ``e`` visits the training frames in the permutation ``default_rng((seed, e))``, so a
  resumed run continues the same order.
* :func:`initial_basis` gives the decoder's initial weights [D, 3V]: a given basis file (VOCA's
  ``init_expression_basis.npy``, [3V, K]) or a PCA of training displacements whose rows are the principal
  directions scaled by their standard deviation (the release's initial basis, kept in its ``.meta``, has
  orthogonal rows of exactly that kind: norms 53 mm … 2.8 mm).

Contract: numpy + ``voca_addon.core``; no TensorFlow. Writes only inside the cache folder.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence as Seq, Tuple

import numpy as np

from voca_addon.core import engine
from voca_addon.core.models import modelfiles
from voca_addon.core.speech.audio import to_mono
from voca_addon.core.face.voca import NUM_FEATURES, WINDOW

from .data import FPS, Dataset, Sequence
from .errors import ConfigError

FEATURE_CACHE_DIR = "training-features"
FEATURE_CACHE_VERSION = 1
PCA_MAX_FRAMES = 2000       # frames sampled for the PCA (2000 × 15069 float64 = 241 MB)
HALF = WINDOW // 2          # zero rows before a sequence's first window row
Progress = Optional[Callable[[int, int, str], None]]


def _feature_key(ds_digest: str, clip) -> str:
    h = hashlib.sha256(f"v{FEATURE_CACHE_VERSION}|{ds_digest}|{clip.rate}|{FPS}|".encode())
    h.update(np.ascontiguousarray(to_mono(clip), dtype="<f8").tobytes())
    return h.hexdigest()


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def compute_features(dataset: Dataset, deepspeech_pb: os.PathLike, cache: Optional[os.PathLike] = None,
                     progress: Progress = None) -> Dict[Tuple[str, str], np.ndarray]:
    """Per-frame DeepSpeech logits of every training and validation sequence, cached.

    Parameters
    ----------
    deepspeech_pb : DeepSpeech v0.1.0 ``output_graph.pb`` (any graph of that structure)
    cache : the add-on's cache folder (default ``~/.cache/voca_addon``); features go to a subfolder.
    progress : called (done, total, name) after each sequence.

    Returns
    -------
    {(subject, sequence): float32 [F, 29]} with F = the sequence's frame count.
    """
    pb = modelfiles.resolve_deepspeech(deepspeech_pb)
    root = Path(cache).expanduser() if cache else modelfiles.cache_dir()
    folder = root / FEATURE_CACHE_DIR
    digest = modelfiles.files_sha256([pb])
    model, out = None, {}
    sequences = dataset.train + dataset.validation
    for done, seq in enumerate(sequences, 1):
        clip = seq.audio
        path = folder / f"{_feature_key(digest, clip)}.npy"
        try:
            logits = np.load(path) if path.is_file() else None
        except (OSError, ValueError):
            logits = None                      # a damaged entry is recomputed
        if logits is None or logits.ndim != 2 or logits.shape[1] != NUM_FEATURES:
            if model is None:
                model = modelfiles.load_deepspeech(pb, root)
            windows = engine.speech_features(clip, model, FPS).windows        # [Fa, 16, 29]
            logits = np.ascontiguousarray(windows[:, HALF], dtype=np.float32)  # row f of window f
            _save_atomic(path, logits)
        out[(seq.subject, seq.name)] = logits[: seq.num_frames]
        if progress is not None:
            progress(done, len(sequences), f"{seq.subject}/{seq.name}")
    return out


@dataclass(frozen=True)
class Batch:
    """One batch, frames grouped by sample: rows s·k .. s·k + k - 1 are sample s's consecutive frames."""
    windows: np.ndarray        # float32 [n·k, 16, 29]
    conditions: np.ndarray     # int32 [n·k], -1 = none
    targets: np.ndarray        # float32 [n·k, V, 3], displacement from the template (metres)


class WindowSampler:
    """Batches of ``k`` consecutive frames over a list of sequences (see the module docstring)."""

    def __init__(self, dataset: Dataset, sequences: Seq[Sequence], features: Dict[Tuple[str, str], np.ndarray],
                 consecutive: int):
        self.verts, self.k = dataset.verts, int(consecutive)
        padded, offsets, self.frame_seq, self.frame_index = [], [], [], []
        start = 0
        for i, seq in enumerate(sequences):
            logits = features[(seq.subject, seq.name)]
            pad = np.zeros((HALF, NUM_FEATURES), np.float32)
            padded.append(np.concatenate([pad, logits, pad]))
            offsets.append(start)
            start += len(logits) + 2 * HALF
            self.frame_seq.append(np.full(seq.num_frames, i, np.int64))
            self.frame_index.append(np.arange(seq.num_frames, dtype=np.int64))
        self.padded = np.concatenate(padded) if padded else np.zeros((0, NUM_FEATURES), np.float32)
        self.offsets = np.asarray(offsets, np.int64)
        self.frame_seq = np.concatenate(self.frame_seq) if sequences else np.zeros(0, np.int64)
        self.frame_index = np.concatenate(self.frame_index) if sequences else np.zeros(0, np.int64)
        self.rows = [seq.rows for seq in sequences]
        self.seq_condition = np.asarray([seq.condition for seq in sequences], np.int32)
        self.seq_template = np.stack([dataset.templates[seq.subject] for seq in sequences]) if sequences else None

    @property
    def num_frames(self) -> int:
        """Samples per epoch (every frame of every sequence, as VOCA's training indices)."""
        return int(len(self.frame_seq))

    def gather(self, ids: np.ndarray, consecutive: Optional[int] = None) -> Batch:
        """The batch of samples ``ids`` (indices into this sampler's frames), ``consecutive`` frames each."""
        ids, k = np.asarray(ids, np.int64), int(consecutive or self.k)
        seq = np.repeat(self.frame_seq[ids], k)                                          # [n·k]
        back = np.arange(k - 1, -1, -1)                                                 # k-1 … 0
        frame = np.maximum(self.frame_index[ids][:, None] - back[None, :], 0).reshape(-1)  # [n·k]
        starts = self.offsets[seq] + frame                                              # window row 0
        windows = self.padded[starts[:, None] + np.arange(WINDOW)[None, :]]             # [n·k, 16, 29]
        rows = np.fromiter((self.rows[s][f] for s, f in zip(seq, frame)), np.int64, len(seq))
        order = np.argsort(rows, kind="stable")                                          # sequential reads
        verts = np.empty((len(rows),) + self.verts.shape[1:], np.float32)
        verts[order] = self.verts[rows[order]]
        targets = verts - self.seq_template[seq]
        return Batch(windows.astype(np.float32), self.seq_condition[seq], targets)

    def epoch_order(self, seed: int, epoch: int) -> np.ndarray:
        """The permutation of frames for 0-based ``epoch``."""
        return np.random.default_rng((seed, epoch)).permutation(self.num_frames)

    def fixed_subset(self, seed: int, count: int) -> np.ndarray:
        """``count`` frames (sorted) chosen once, for a validation loss comparable across epochs."""
        count = min(count, self.num_frames)
        return np.sort(np.random.default_rng((seed, 1 << 20)).choice(self.num_frames, count, replace=False))


def _pca_rows(sampler: WindowSampler, dim: int, seed: int) -> np.ndarray:
    n = sampler.num_frames
    ids = np.sort(np.random.default_rng((seed, 1 << 21)).choice(n, min(n, PCA_MAX_FRAMES), replace=False))
    disp = sampler.gather(ids, consecutive=1).targets.reshape(len(ids), -1).astype(np.float64)        # [m, 3V]
    disp -= disp.mean(axis=0)
    eigval, eigvec = np.linalg.eigh(disp @ disp.T)                                   # [m, m] Gram matrix
    top = np.argsort(eigval)[::-1][:dim]
    sing = np.sqrt(np.maximum(eigval[top], 0.0))
    keep = int(np.sum(sing > sing[0] * 1e-9)) if len(sing) else 0                     # drop null directions
    directions = (disp.T @ eigvec[:, top[:keep]] / sing[:keep]).T                     # [keep, 3V] unit rows
    basis = np.zeros((dim, disp.shape[1]), np.float64)
    basis[:keep] = directions * (sing[:keep] / np.sqrt(max(len(ids) - 1, 1)))[:, None]  # × std, metres
    return basis.astype(np.float32)


def initial_basis(basis_file: str, dim: int, num_vertices: int, sampler: WindowSampler, seed: int,
                  enabled: bool = True) -> np.ndarray:
    """Initial decoder weights float32 [dim, 3·V] (see the module docstring); zeros when not ``enabled``.

    Raises
    ------
    ConfigError
        The basis file is missing, not an .npy, or not [3V, K] / [K, 3V].
    """
    width = 3 * num_vertices
    if not enabled:
        return np.zeros((dim, width), np.float32)           # VOCA with init_expression = False
    if not basis_file:
        return _pca_rows(sampler, dim, seed)
    try:
        given = np.load(basis_file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[Input Output] expression_basis_fname: cannot read '{basis_file}' as .npy ({exc}); "
                          "leave it empty to initialise from a PCA of the training data") from None
    if given.ndim == 2 and given.shape[0] != width and given.shape[1] == width:
        given = given.T
    if given.ndim != 2 or given.shape[0] != width:
        raise ConfigError(f"[Input Output] expression_basis_fname: '{basis_file}' is {list(given.shape)}; "
                          f"expected [{width}, K] (VOCA's layout: one column per component)")
    basis = np.zeros((dim, width), np.float32)
    keep = min(dim, given.shape[1])
    basis[:keep] = given[:, :keep].T
    return basis
