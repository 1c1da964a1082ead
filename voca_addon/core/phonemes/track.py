"""The phone track: what the phoneme stage hands to the closures, the CLI and other tools.

A :class:`PhoneTrack` is a sorted, non-overlapping tuple of :class:`Phone` (ARPAbet, upper case, no
stress digits; seconds from the audio's start; the word it belongs to or ''). Silences, pauses and
noise are not listed. :func:`make_track` is the one gate every source goes through (detector,
aligner, the file readers): it normalises the labels and refuses what a user's file can get wrong
with one :class:`~voca_addon.core.errors.InputError` each.

Contract: stdlib only; pure functions; thread-safe.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional, Tuple

from ..errors import InputError

SOURCES = ("detected", "aligned", "textgrid", "rhubarb", "json", "tsv")
# What the detector can and cannot do, said wherever a detected track is reported (issue 18: non-English audio):
# PocketSphinx's model and dictionary are US English; speech in another language is heard as English words.
DETECTED_LABEL = "detected by the US-English recogniser; for another language import an alignment file"
END_TOLERANCE_S = 0.02       # s, a time may pass the audio's end by this much (rounding of 10 ms frames)
OVERLAP_TOLERANCE_S = 1e-6   # s, rounding in text files (Praat writes 17 digits, we write 1e-6 s)

# The 39 phones of the CMU dictionary (ARPAbet without stress), which PocketSphinx's en-us model uses.
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
    .split())
# Labels that mean "no phone here": silence, pauses, noise, spoken noise, empty intervals.
SILENCE = frozenset(("", "SIL", "SP", "SPN", "NSN", "+NSN+", "+SPN+", "<SIL>", "<EPS>", "<S>", "</S>",
                     "[NOISE]", "[SPEECH]", "NOISE", "BREATH", "LAUGH", "CG", "LG", "NS", "X"))
# Extra ARPAbet spellings some aligners write (TIMIT-style and variants).
ARPABET_ALIASES = {"AX": "AH", "AXR": "ER", "IX": "IH", "UX": "UW", "EM": "M", "EN": "N", "EL": "L",
                   "NX": "N", "DX": "T", "Q": "T", "HV": "HH", "ENG": "NG", "AXH": "AH", "PAU": "SIL",
                   "H#": "SIL", "EPI": "SIL"}
# IPA (as Montreal Forced Aligner's IPA models write it) → ARPAbet. Length marks and stress are removed
# first. Unlisted symbols are refused by name.
IPA = {
    "p": "P", "pʰ": "P", "b": "B", "m": "M", "mʲ": "M", "m̩": "M", "f": "F", "fʲ": "F", "v": "V", "vʲ": "V",
    "θ": "TH", "ð": "DH", "t": "T", "tʰ": "T", "tʲ": "T", "ɾ": "T", "ʔ": "T", "d": "D", "dʲ": "D",
    "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "tʃ": "CH", "dʒ": "JH", "k": "K", "kʰ": "K", "c": "K",
    "cʰ": "K", "g": "G", "ɡ": "G", "ɟ": "G", "ŋ": "NG", "h": "HH", "n": "N", "n̩": "N", "ɲ": "N", "l": "L",
    "ɫ": "L", "ɫ̩": "L", "ʎ": "L", "ɹ": "R", "r": "R", "w": "W", "j": "Y", "ʍ": "W",
    "i": "IY", "ɪ": "IH", "e": "EY", "ej": "EY", "eɪ": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA",
    "ɒ": "AA", "ɔ": "AO", "o": "OW", "ow": "OW", "oʊ": "OW", "əʊ": "OW", "ʊ": "UH", "u": "UW", "ʉ": "UW",
    "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "aj": "AY", "aɪ": "AY", "aw": "AW",
    "aʊ": "AW", "ɔj": "OY", "ɔɪ": "OY",
}
_IPA_MARKS = "ːˑˈˌ"


class Phone(NamedTuple):
    """One phone: ARPAbet label (upper case, no stress digit), start and end in seconds, its word or ''."""

    phone: str
    start: float
    end: float
    word: str


@dataclass(frozen=True)
class PhoneTrack:
    """Phones of one audio clip.

    Attributes
    ----------
    phones : tuple of Phone
        Sorted by start, non-overlapping; silences are not listed.
    source : str
        "detected" | "aligned" | "textgrid" | "rhubarb" | "json" | "tsv" (the last two: this
        add-on's own formats).
    warnings : tuple of str
        One line each, for the user (unknown words, a transcript that did not match the audio).
    """

    phones: Tuple[Phone, ...]
    source: str
    warnings: Tuple[str, ...] = ()

    def __post_init__(self):
        assert self.source in SOURCES, self.source

    @property
    def label(self) -> str:
        """The source as the user reads it: a detected track also says it was heard as US English."""
        return DETECTED_LABEL if self.source == "detected" else self.source

    def of(self, *labels: str) -> Tuple[Phone, ...]:
        """The phones whose label is one of ``labels`` (e.g. ``track.of("P", "B", "M")``)."""
        return tuple(p for p in self.phones if p.phone in labels)


def arpabet(label: str, where: str = "") -> Optional[str]:
    """ARPAbet for one phone label, None for a silence / noise label.

    Parameters
    ----------
    label : str
        ARPAbet with or without stress digits, any case ("ah0", "M"), a TIMIT/ARPAbet variant ("AX",
        "DX") or an English IPA symbol ("tʃ", "ɹ", "aj").
    where : str
        Where the label was read, for the message ("'a.TextGrid', tier 'phones', interval 12").

    Raises
    ------
    InputError
        The label is neither ARPAbet nor a known IPA symbol.
    """
    text = label.strip()
    upper = text.upper()
    if upper in SILENCE:
        return None
    bare = upper.rstrip("012")
    bare = ARPABET_ALIASES.get(bare, bare)
    if bare in ARPABET:
        return bare
    if bare == "SIL":
        return None
    ipa = text.lower().translate({ord(c): None for c in _IPA_MARKS})
    if ipa in IPA:
        return IPA[ipa]
    raise InputError(f"{where or 'phone'}: '{label}' is not an ARPAbet phone (AA … ZH, stress digits allowed) nor "
                     "an English IPA symbol this reader knows. Use an English ARPAbet alignment (e.g. Montreal "
                     "Forced Aligner's english_us_arpa model) or map the labels to ARPAbet first.")


def _check_time(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise InputError(f"{what}: the time {value!r} is not a finite number of seconds. Fix the file.")
    if value < 0:
        raise InputError(f"{what}: the time {value} s is negative. Fix the file.")
    return float(value)


def make_track(items: Iterable[Tuple[str, float, float, str, str]], source: str, name: str,
               duration: Optional[float] = None, warnings: Iterable[str] = ()) -> PhoneTrack:
    """Validate raw phones and build a PhoneTrack.

    Parameters
    ----------
    items : iterable of (label, start, end, word, where)
        Raw labels (any accepted spelling, silences included), times in seconds, the word ('' if none)
        and where each was read (for messages).
    source : str
        One of :data:`SOURCES`.
    name : str
        The file (or "the detector"), for messages.
    duration : float, optional
        The audio's length in seconds: a phone past it (+ :data:`END_TOLERANCE_S`) is refused; a silence
        past it is left out (aligners pad a file's last silence to their own idea of its length).
    warnings : iterable of str

    Raises
    ------
    InputError
        A time not a finite, non-negative number; end before start; intervals unsorted or overlapping;
        a time past the audio's end; a label that is not a phone.
    """
    phones = []
    prev_end, prev_where = -1.0, ""
    for label, start, end, word, where in items:
        start, end = _check_time(start, where), _check_time(end, where)
        if end < start:
            raise InputError(f"{where}: the interval ends ({end} s) before it starts ({start} s). Fix the file.")
        if start < prev_end - OVERLAP_TOLERANCE_S:
            kind = "unsorted" if start < prev_end and end <= prev_end else "overlapping"
            before = prev_where[len(name) + 2:] if prev_where.startswith(name + ", ") else prev_where
            raise InputError(f"intervals are {kind}: {where} starts at {start} s, before {before} "
                             f"ends ({prev_end} s). Phones must be in time order without overlaps.")
        prev_end, prev_where = max(prev_end, end), where
        code = arpabet(str(label), where)
        if duration is not None and end > duration + END_TOLERANCE_S:     # ``where`` names the file
            if code is None:
                continue                    # a silence running past the end: nothing to key there
            raise InputError(f"{where} ends at {end} s, past the audio's end ({duration:.3f} s). "
                             "Is this the alignment of another recording?")
        if code is not None and end > start:
            phones.append(Phone(code, start, max(start, min(end, duration) if duration else end), word))
    return PhoneTrack(tuple(phones), source, tuple(warnings))
