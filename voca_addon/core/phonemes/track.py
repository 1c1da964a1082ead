"""The phone track: what the phoneme stage hands to the closures, the CLI and other tools.

A :class:`PhoneTrack` is a sorted, non-overlapping tuple of :class:`Phone` (ARPAbet, upper case, no
stress digits; seconds from the audio's start; the word it belongs to or ''). Silences, pauses and
noise are not listed. :func:`make_track` is the one gate every source goes through (detector,
aligner, the file readers): it normalises the labels and refuses what a user's file can get wrong
with one :class:`~voca_addon.core.errors.InputError` each. Labels are ARPAbet or IPA in any language
(:func:`ipa_phone`: marks that do not change the class dropped, the base symbol mapped to the nearest
ARPAbet phone); a file's tier is read in one of the two, decided once from all its labels
(:func:`alphabet_of`). docs/phonemes.md has the table and the reasons.

Contract: stdlib only; pure functions; thread-safe.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional, Tuple

from ..errors import InputError

SOURCES = ("detected", "aligned", "textgrid", "rhubarb", "json", "tsv")
# What the detector can and cannot do, said wherever a detected track is reported (issue 18: non-English audio):
# PocketSphinx's model and dictionary are US English; speech in another language is heard as English words.
DETECTED_BY = "detected by the US-English recogniser"
DETECTED_LABEL = f"{DETECTED_BY}; for another language import an alignment file"
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
# IPA → ARPAbet (docs/phonemes.md, "IPA labels", gives the table and argues the choices). A label is read
# symbol by symbol: combining marks, modifier letters and modifier symbols (Unicode categories Mn, Lm, Sk:
# ʲ ʷ ʰ ˠ ˤ ̪ ̩ ̃ ̥ ̚ ː ˑ ˈ ˌ ͡ tone letters …) and the undertie ‿ are dropped — none changes which ARPAbet
# class a sound belongs to — except the rhotic hook ˞, which makes a vowel ER. Unlisted symbols are refused.
IPA_CONSONANTS = {
    # bilabial: the lips meet (class M) — ɸ β too: the lips come within a slit of each other
    "p": "P", "b": "B", "m": "M", "ɓ": "B", "ʙ": "B", "ɸ": "P", "β": "B",
    # labiodental: lower lip to the upper teeth (class F) — ɱ too: the lips never meet
    "f": "F", "v": "V", "ʋ": "V", "ⱱ": "V", "ɱ": "F",
    "θ": "TH", "ð": "DH",                                                       # dental
    "t": "T", "d": "D", "n": "N", "s": "S", "z": "Z", "r": "R", "ɾ": "T", "ɹ": "R", "l": "L", "ɫ": "L",
    "ɬ": "L", "ɮ": "L", "ɗ": "D", "ʃ": "SH", "ʒ": "ZH",                         # alveolar, postalveolar
    "ʈ": "T", "ɖ": "D", "ɳ": "N", "ʂ": "SH", "ʐ": "ZH", "ɽ": "R", "ɻ": "R", "ɭ": "L",   # retroflex
    "ɕ": "SH", "ʑ": "ZH", "ɧ": "SH",                                            # alveolo-palatal
    "c": "K", "ɟ": "G", "ɲ": "N", "ç": "HH", "ʝ": "Y", "j": "Y", "ʎ": "L", "ʄ": "G",   # palatal
    "k": "K", "g": "G", "ɡ": "G", "ŋ": "NG", "x": "HH", "ɣ": "G", "ɰ": "W", "ʟ": "L", "ɠ": "G",   # velar
    "w": "W", "ʍ": "W", "ɥ": "W",                                               # labial-velar, labial-palatal
    "q": "K", "ɢ": "G", "ɴ": "NG", "χ": "HH", "ʁ": "R", "ʀ": "R", "ʛ": "G",     # uvular
    "ħ": "HH", "ʕ": "HH", "ʜ": "HH", "ʢ": "HH", "ʡ": "T", "ʔ": "T", "h": "HH", "ɦ": "HH",   # further back
}
# Vowels by height, backness and rounding; a rounding mismatch counts more than a backness one (the face
# shows the lips, not the tongue): front rounded y ø œ take the rounded back vowel of their height.
IPA_VOWELS = {
    "i": "IY", "y": "UW", "ɨ": "IH", "ʉ": "UW", "ɯ": "IH", "u": "UW",
    "ɪ": "IH", "ʏ": "UH", "ʊ": "UH",
    "e": "EY", "ø": "OW", "ɘ": "AH", "ɵ": "OW", "ɤ": "AH", "o": "OW",
    "ə": "AH", "ɚ": "ER", "ɝ": "ER",
    "ɛ": "EH", "œ": "AO", "ɜ": "ER", "ɞ": "AO", "ʌ": "AH", "ɔ": "AO",
    "æ": "AE", "ɐ": "AH",
    "a": "AA", "ɶ": "AO", "ɑ": "AA", "ɒ": "AA",
}
# Two consonant symbols read as one sound when the first is a stop or nasal and the second not h (IPA writes
# aspiration ʰ; "th", "sh" are English spelling): these affricates; others take their bilabial (pf → P,
# kp → P, ŋm → M), else their labiodental, else their last symbol (ts → S); a glide after a consonant is
# its secondary articulation (kw → K).
_CLOSURES = set("pbtdʈɖcɟkgɡqɢʔmnɳɲŋɴɱɓɗʄɠʛ")
IPA_AFFRICATES = {"tʃ": "CH", "dʒ": "JH", "tɕ": "CH", "dʑ": "JH", "ʈʂ": "CH", "ɖʐ": "JH", "tʂ": "CH",
                  "dʐ": "JH", "cç": "CH", "ɟʝ": "JH"}
IPA_GLIDES = {"j": "i", "w": "u", "ɥ": "y", "ɰ": "ɯ"}     # after a vowel, an off-glide: aj = ai
# Two vowels (a diphthong): the ARPAbet diphthong whose ends they match, else the first vowel.
_OPEN, _MID_BACK, _FRONT_MID = set("aɑæɐʌ"), set("oɔɒ"), set("eɛ")
_TO_FRONT, _TO_BACK = set("iɪyʏe"), set("uʊoɔ")
_RHOTIC = "\u02de"          # ˞ rhotic hook: ɑ˞ = ɚ
_UNDERTIE = "\u203f"        # ‿ (Unicode Pc): linking, like the tie bar ͡ (Mn)
_IPA_SILENCE = SILENCE - {"X"}   # in IPA, x is a velar fricative


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


class Alphabet(NamedTuple):
    """How the labels of one tier (or file) are read, decided once for all of them by :func:`alphabet_of`."""

    name: str               # "arpabet" | "ipa"
    because: str = ""       # "ipa": the first label that made it IPA (for messages)
    scope: str = "tier"     # "tier" | "file", for messages


def _arpabet_code(text: str) -> Tuple[bool, Optional[str]]:
    """(is it ARPAbet or an ARPAbet-style silence, its phone or None)."""
    upper = text.upper()
    if upper in SILENCE:
        return True, None
    bare = upper.rstrip("012")
    bare = ARPABET_ALIASES.get(bare, bare)
    if bare in ARPABET:
        return True, bare
    return bare == "SIL", None


def _ipa_bases(text: str) -> Optional[Tuple[list, bool]]:
    """The label's base IPA symbols (marks that do not change the class dropped) and whether it carries the
    rhotic hook; None when a character is not IPA."""
    bases, rhotic = [], False
    for char in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", char)
        if char in IPA_CONSONANTS or char in IPA_VOWELS:            # ç before its decomposition c + ̧
            bases.append(char)
        elif char == _RHOTIC:
            rhotic = True
        elif unicodedata.category(char) in ("Mn", "Lm", "Sk") or char == _UNDERTIE:
            continue
        elif (parts[0] in IPA_CONSONANTS or parts[0] in IPA_VOWELS) and all(
                unicodedata.category(c) == "Mn" for c in parts[1:]):
            bases.append(parts[0])                                   # ã ü ẽ: the letter and its marks
        else:
            return None
    return bases, rhotic


def _diphthong(first: str, second: str) -> str:
    if first in _OPEN and second in _TO_FRONT:
        return "AY"
    if first in _OPEN and second in _TO_BACK:
        return "AW"
    if first in _MID_BACK and second in _TO_FRONT:
        return "OY"
    if first in _FRONT_MID and second in _TO_FRONT:
        return "EY"
    if first in "oəɵ" and second in _TO_BACK:
        return "OW"
    return IPA_VOWELS[first]


def ipa_phone(text: str) -> Optional[str]:
    """ARPAbet for an IPA label (``bʲ`` → B, ``ɛ̃`` → EH, ``aj`` → AY, ``tɕʰ`` → CH), None if it is not one.

    One label is one sound: a consonant, two consonants (an affricate, ``kp``, ``kw``), or a vowel followed
    by at most two vowels or off-glides (``aɪ``, ``aj``, ``ɔʏ``). Clicks, digits and other letters: None.
    """
    read = _ipa_bases(text)
    if read is None or not read[0]:
        return None
    bases, rhotic = read
    if bases[0] in IPA_VOWELS:
        if len(bases) > 3 or any(b not in IPA_VOWELS and b not in IPA_GLIDES for b in bases[1:]):
            return None
        if rhotic:
            return "ER"
        return _diphthong(bases[0], IPA_GLIDES.get(bases[1], bases[1])) if len(bases) > 1 else IPA_VOWELS[bases[0]]
    if any(b in IPA_VOWELS for b in bases) or len(bases) > 2 or (len(bases) == 2 and (
            bases[0] not in _CLOSURES or bases[1] in "hɦ")):
        return None                                 # "hello", "sh", "th": a word or English spelling, not IPA
    if len(bases) == 1:
        return IPA_CONSONANTS[bases[0]]
    pair = "".join(bases)
    if pair in IPA_AFFRICATES:
        return IPA_AFFRICATES[pair]
    if bases[1] in IPA_GLIDES:
        return IPA_CONSONANTS[bases[0]]                               # kw = kʷ
    codes = [IPA_CONSONANTS[b] for b in bases]
    for lips in (("P", "B", "M"), ("F", "V")):
        if any(c in lips for c in codes):
            return next(c for c in codes if c in lips)
    return codes[1]


def alphabet_of(labels: Iterable[str], scope: str = "tier") -> Alphabet:
    """Decide once how a tier's (or file's) labels are read.

    ARPAbet when every label (silences aside) is ARPAbet — any case, stress digits and TIMIT variants
    allowed — and either all are upper case or one of them cannot be IPA (``ah0``, ``dh``); otherwise IPA.
    So MFA's english_us_arpa tiers read as ARPAbet, its IPA tiers as IPA even where every label is also
    a letter of ARPAbet (``t``, ``y``: IPA y is a rounded vowel, not ARPAbet Y; IPA x a fricative, not
    Rhubarb's rest X).
    """
    phones = [t for t in (str(label).strip() for label in labels) if t.upper() not in _IPA_SILENCE]
    odd = next((t for t in phones if not _arpabet_code(t)[0]), None)
    if odd is None and (all(t == t.upper() for t in phones) or any(ipa_phone(t) is None for t in phones)):
        return Alphabet("arpabet", "", scope)
    return Alphabet("ipa", odd if odd is not None else next(t for t in phones if t != t.upper()), scope)


def arpabet(label: str, where: str = "", alphabet: Optional[Alphabet] = None) -> Optional[str]:
    """ARPAbet for one phone label, None for a silence / noise label.

    Parameters
    ----------
    label : str
        ARPAbet with or without stress digits, any case ("ah0", "M"), a TIMIT/ARPAbet variant ("AX",
        "DX") or IPA in any language ("tʃ", "ɹ", "aj", "bʲ", "ʁ", "y").
    where : str
        Where the label was read, for the message ("'a.TextGrid', tier 'phones', interval 12").
    alphabet : Alphabet, optional
        How to read it (:func:`alphabet_of` of its tier); default: ARPAbet if it is, else IPA.

    Raises
    ------
    InputError
        The label is not a phone in that alphabet.
    """
    text = label.strip()
    reading = alphabet.name if alphabet is not None else "either"
    if reading != "ipa":
        known, code = _arpabet_code(text)
        if known:
            return code
    if reading != "arpabet":
        if text.upper() in _IPA_SILENCE:
            return None
        code = ipa_phone(text)
        if code is not None:
            return code
    where = where or "phone"
    if reading == "ipa" and _arpabet_code(text)[0]:
        raise InputError(f"{where}: '{label}' is ARPAbet, but this {alphabet.scope} also holds "
                         f"'{alphabet.because}', which is not upper-case ARPAbet, so its labels are read as IPA. "
                         f"Write one alphabet per {alphabet.scope}: all ARPAbet or all IPA.")
    raise InputError(f"{where}: '{label}' is not an ARPAbet phone (AA … ZH, stress digits allowed) nor an IPA "
                     "phone symbol. Labels are read as ARPAbet (e.g. Montreal Forced Aligner's english_us_arpa "
                     "model) or as IPA in any language (MFA's IPA models; clicks have no ARPAbet counterpart). "
                     "Correct or remove that label.")


def _check_time(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise InputError(f"{what}: the time {value!r} is not a finite number of seconds. Fix the file.")
    if value < 0:
        raise InputError(f"{what}: the time {value} s is negative. Fix the file.")
    return float(value)


def make_track(items: Iterable[Tuple[str, float, float, str, str]], source: str, name: str,
               duration: Optional[float] = None, warnings: Iterable[str] = (),
               alphabet: Optional[Alphabet] = None) -> PhoneTrack:
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
        past it is left out (aligners pad a file's last silence to their own idea of its length); a phone
        ending within the tolerance past it is cut at it, and left out if nothing of it is left.
    warnings : iterable of str
    alphabet : Alphabet, optional
        How the labels are read (:func:`alphabet_of`); default each label ARPAbet if it is, else IPA.

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
        code = arpabet(str(label), where, alphabet)
        if duration is not None and end > duration + END_TOLERANCE_S:     # ``where`` names the file
            if code is None:
                continue                    # a silence running past the end: nothing to key there
            raise InputError(f"{where} ends at {end} s, past the audio's end ({duration:.3f} s). "
                             "Is this the alignment of another recording?")
        if duration is not None:
            end = min(end, duration)        # within the tolerance: cut at the audio's end
        if code is not None and end > start:
            phones.append(Phone(code, start, end, word))
    return PhoneTrack(tuple(phones), source, tuple(warnings))
