"""Long audio in pieces: cut points at pauses so each piece decodes in bounded memory.

PocketSphinx's recognisers keep the whole utterance's search history (lattice, back-pointer table):
their memory grows with the utterance's length (measured: 160 MB for 5 s, 2.2 GB for 60 s of speech in
one piece, docs/phonemes.md). :func:`split_points` cuts 16 kHz audio into pieces of at most
:data:`SEGMENT_MAX_S` at pauses, never inside a word as far as energy can tell:

- frame energy on 10 ms frames (dB of the mean square, int16 scale);
- a frame is quiet when it is within :data:`QUIET_DB` dB of the clip's floor (its 5th percentile) and
  at least :data:`LOUD_DB` dB below its median frame (so steady noise, with no pause, has no quiet frame);
- from each piece's start, the cut goes in the middle of the longest quiet run that lies within
  [start + :data:`SEGMENT_MIN_S`, start + :data:`SEGMENT_MAX_S`] (the later one on a tie); when that
  window holds no quiet frame, at its quietest 10 ms frame (energy smoothed over 30 ms).

Audio of at most :data:`SEGMENT_MAX_S` is one piece (the path every clip under 20 s takes, unchanged).

Contract: numpy only; pure functions.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

RATE = 16000            # Hz
FRAME = 160             # samples per 10 ms frame at RATE
SEGMENT_MAX_S = 20.0    # s, the longest piece decoded in one utterance
SEGMENT_MIN_S = 5.0     # s, the shortest piece cut off the front (the last piece may be shorter)
QUIET_DB = 12.0         # dB above the clip's energy floor that still counts as a pause
LOUD_DB = 6.0           # dB a pause is at least below the clip's median frame (steady noise has no pause)


def frame_energy_db(samples: np.ndarray) -> np.ndarray:
    """Energy of 10 ms frames.

    Parameters
    ----------
    samples : ndarray [n]
        Audio at :data:`RATE`, int16 scale (any numeric dtype).

    Returns
    -------
    ndarray [ceil(n / FRAME)] float64
        10·log10(mean square + 1), dB.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = -(-len(x) // FRAME)
    padded = np.zeros(n * FRAME)
    padded[:len(x)] = x
    return 10.0 * np.log10(np.mean(padded.reshape(n, FRAME) ** 2, axis=1) + 1.0)


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """[(first, end)) index runs where ``mask`` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def split_points(samples: np.ndarray, max_s: float = SEGMENT_MAX_S, min_s: float = SEGMENT_MIN_S
                 ) -> List[Tuple[int, int]]:
    """Pieces of ``samples`` to decode one by one.

    Parameters
    ----------
    samples : ndarray [n]
        Audio at :data:`RATE` (int16 scale).
    max_s, min_s : float
        s, longest piece; shortest piece cut off the front (0 < min_s < max_s).

    Returns
    -------
    list of (start, end) sample indices
        Contiguous, covering [0, n); each at most ``max_s`` long, cuts on 10 ms frame boundaries.
    """
    n = len(samples)
    max_f, min_f = int(round(max_s * 100)), int(round(min_s * 100))
    if n <= max_f * FRAME:
        return [(0, n)]
    energy = frame_energy_db(samples)
    quiet = energy <= min(np.percentile(energy, 5) + QUIET_DB, np.median(energy) - LOUD_DB)
    smooth = np.convolve(energy, np.ones(3) / 3.0, mode="same")
    total = len(energy)
    cuts, start = [0], 0
    while (total - start) > max_f:
        lo, hi = start + min_f, start + max_f           # the cut frame lies in [lo, hi)
        best = None
        for a, b in _runs(quiet[lo:hi]):
            if best is None or (b - a) >= (best[1] - best[0]):
                best = (a, b)
        cut = lo + (best[0] + best[1]) // 2 if best is not None else lo + int(np.argmin(smooth[lo:hi]))
        cuts.append(cut)
        start = cut
    bounds = [c * FRAME for c in cuts] + [n]
    return list(zip(bounds[:-1], bounds[1:]))
