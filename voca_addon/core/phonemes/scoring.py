"""Compare a phone track with a reference: how many of a phone class it finds, how early or late, how many
it invents. Used by tools/bench_phonemes.py and the tests (detection against forced alignment).

Definitions (one class at a time, e.g. bilabials P/B/M):

- a reference phone is **found** when a detected phone of the class starts within ``window`` seconds of
  its start; its **timing error** is that smallest start difference;
- a detected phone is **false** when no reference phone of the class starts within ``window`` of it.

Contract: stdlib only; pure functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

BILABIALS = ("P", "B", "M")
LABIODENTALS = ("F", "V")
WINDOW_S = 0.1          # s, the tolerance of "within 100 ms"


@dataclass(frozen=True)
class ClassScore:
    """How a detected track matches a reference for one phone class (counts; errors in seconds)."""

    reference: int              # reference phones of the class
    found: int                  # of those, matched by a detected phone within the window
    detected: int               # detected phones of the class
    false: int                  # of those, with no reference phone within the window
    errors: Tuple[float, ...]   # |start difference| of each found reference phone, s

    def merged(self, other: "ClassScore") -> "ClassScore":
        """The two scores pooled (several clips)."""
        return ClassScore(self.reference + other.reference, self.found + other.found,
                          self.detected + other.detected, self.false + other.false, self.errors + other.errors)

    @property
    def found_rate(self) -> float:
        return self.found / self.reference if self.reference else 1.0

    @property
    def false_rate(self) -> float:
        return self.false / self.detected if self.detected else 0.0


EMPTY = ClassScore(0, 0, 0, 0, ())


def score(detected, reference, labels: Sequence[str] = BILABIALS, window: float = WINDOW_S) -> ClassScore:
    """Score ``detected`` against ``reference`` (PhoneTrack or sequences of Phone) for ``labels``.

    Returns
    -------
    ClassScore
    """
    det = [p.start for p in getattr(detected, "phones", detected) if p.phone in labels]
    ref = [p.start for p in getattr(reference, "phones", reference) if p.phone in labels]
    errors = []
    for r in ref:
        best = min((abs(d - r) for d in det), default=None)
        if best is not None and best <= window + 1e-9:
            errors.append(best)
    false = sum(1 for d in det if not any(abs(d - r) <= window + 1e-9 for r in ref))
    return ClassScore(len(ref), len(errors), len(det), false, tuple(errors))


def word_starts(phones):
    """[(word, start s)] of the words' first phones, in order (silences, noises and unnamed phones left out):
    what the long-transcript test and benchmark compare against each sentence's own alignment."""
    out, previous = [], None
    for p in phones:
        if not p.word or p.phone == "SIL" or p.phone.startswith("+"):
            previous = None
            continue
        if p.word != previous:
            out.append((p.word, p.start))
        previous = p.word
    return out
