"""Praat TextGrid files (long and short text formats): read phones (and words), write both tiers.

Reading follows Praat's own rule for text files: labels (``xmin =``, ``item [1]:``) are skipped; only
quoted strings, numbers and ``<exists>`` carry data, in a fixed order. So the long ("self-documenting"),
the short and the old short (``"ooTextFile short"``) formats are read by one tokenizer. UTF-8 and UTF-16
(with BOM, as Praat writes files holding non-ASCII text) are accepted; Praat's binary format is refused
with what to do.

The phone tiers are the interval tiers named ``phones`` (Montreal Forced Aligner), ``phone``,
``phonemes``, ``phoneme`` or ``segments`` (any case; MFA's per-speaker ``SPEAKER - phones`` too); the
word tiers ``words``/``word``. Every speaker's phone tier is read (VOCA animates one face from all the speech
in the audio: several speakers' tiers merge into one track, sorted by time; speech of two tiers at once is
refused, naming both tiers; one speaker's second phone tier is used only when the first holds no phones); each tier's labels are read as ARPAbet or IPA, decided once per tier
(:func:`.track.alphabet_of`). Each phone takes the word, from its own speaker's word tier, whose interval
holds its midpoint.

Contract: stdlib only; raises InputError; thread-safe.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..errors import InputError
from .track import OVERLAP_TOLERANCE_S, Phone, PhoneTrack, alphabet_of, make_track

PHONE_TIERS = ("phones", "phone", "phonemes", "phoneme", "segments")
WORD_TIERS = ("words", "word")
TEXT_HEADERS = ("ooTextFile", "ooTextFile short")     # the second: Praat's older short-format header
BINARY_HEADER = b"ooBinaryFile"
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|(?<![\w\[])([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)'
                    r'(?![\w\]])|(\[\s*\d+\s*\])|(!.*)')


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(f"'{name}' is not a text file.")          # pragma: no cover (latin-1 decodes anything)


def _tokens(text: str) -> List:
    """Strings (str), numbers (float) and flags ('<exists>') in file order; labels and [i] indices skipped."""
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(("flag", m.group(2)))
        elif m.group(3) is not None:
            out.append(float(m.group(3)))
    return out


class _Reader:
    def __init__(self, tokens, name):
        self.tokens, self.pos, self.name = tokens, 0, name

    def take(self, kind, what):
        if self.pos >= len(self.tokens):
            raise InputError(f"'{self.name}' ends early (expected {what}): it is not a complete Praat TextGrid.")
        value = self.tokens[self.pos]
        self.pos += 1
        ok = isinstance(value, str) if kind is str else (isinstance(value, float) if kind is float else True)
        if not ok:
            raise InputError(f"'{self.name}': expected {what}, found {value!r}: the file is not a valid Praat "
                             "TextGrid (long or short text format).")
        return value


def parse_textgrid(text: str, name: str) -> List[Tuple[str, str, list]]:
    """Tiers of a TextGrid: (class, name, [(xmin, xmax, text) or (time, mark)]) each.

    Raises
    ------
    InputError
        Not a TextGrid, or truncated.
    """
    r = _Reader(_tokens(text), name)
    if r.take(str, '"ooTextFile"') not in TEXT_HEADERS or r.take(str, '"TextGrid"') != "TextGrid":
        raise InputError(f"'{name}' is not a Praat TextGrid (its header must say File type = \"ooTextFile\", "
                         "Object class = \"TextGrid\").")
    r.take(float, "xmin"), r.take(float, "xmax")
    flag = r.take(None, "<exists>")
    if flag != ("flag", "<exists>"):
        return []
    tiers = []
    for _ in range(int(r.take(float, "the number of tiers"))):
        cls, tier = r.take(str, "a tier class"), r.take(str, "a tier name")
        r.take(float, "tier xmin"), r.take(float, "tier xmax")
        count = int(r.take(float, "the number of intervals"))
        if cls == "IntervalTier":
            items = [(r.take(float, "xmin"), r.take(float, "xmax"), r.take(str, "text")) for _ in range(count)]
        elif cls == "TextTier":
            items = [(r.take(float, "time"), r.take(str, "mark")) for _ in range(count)]
        else:
            raise InputError(f"'{name}': unknown tier class '{cls}' (IntervalTier or TextTier expected).")
        tiers.append((cls, tier, items))
    return tiers


def _speaker(tier: str) -> Tuple[str, str]:
    """(speaker, kind) of a tier name: "Alice - phones" → ("Alice", "phones"); "phones" → ("", "phones")."""
    head, sep, tail = tier.strip().rpartition(" - ")
    return (head.strip(), tail.strip().lower()) if sep else ("", tier.strip().lower())


def _find_tiers(tiers, names) -> List[Tuple[str, str, list]]:
    """(speaker, tier name, intervals) of every interval tier whose kind is one of ``names``, in file order."""
    return [(_speaker(tier)[0], tier, items) for cls, tier, items in tiers
            if cls == "IntervalTier" and _speaker(tier)[1] in names]


def _read_text(path, name: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read alignment file '{name}': {exc.strerror or exc}.") from None
    if data.startswith(BINARY_HEADER):
        raise InputError(f"'{name}' is a TextGrid in Praat's binary format, which this reader does not read. "
                         "Open it in Praat and save it as text (Save as text file…), then use that file.")
    return _decode(data, name)


def _tier_track(name, tier, intervals, word_items, duration) -> PhoneTrack:
    """One phone tier's phones (labels read in the tier's alphabet), each with its speaker's word."""
    def word_at(mid):
        return next((t for a, b, t in word_items if a <= mid < b and t), "")

    items = [(text, a, b, word_at((a + b) / 2), f"'{name}', tier '{tier}', interval {i + 1}")
             for i, (a, b, text) in enumerate(intervals)]
    return make_track(items, "textgrid", f"'{name}'", duration,
                      alphabet=alphabet_of(text for _a, _b, text in intervals))


def _merge(name, tracks) -> Tuple[Phone, ...]:
    """The phones of several tiers in time order; refused where two tiers' phones overlap."""
    merged = sorted(((p, tier) for tier, track in tracks for p in track.phones), key=lambda pt: pt[0][1:3])
    last = None                                 # (phone, tier) that ends latest so far
    for phone, tier in merged:
        if last is not None and phone.start < last[0].end - OVERLAP_TOLERANCE_S:
            raise InputError(
                f"'{name}': phones of two tiers are overlapping: tier '{tier}' has {phone.phone} from "
                f"{phone.start} s, before {last[0].phone} of tier '{last[1]}' ends ({last[0].end} s). VOCA "
                "animates one face from all the speech in the audio, so every speaker's phones go into one "
                "track, and one mouth cannot say both. Remove one speaker's phones where they overlap (or "
                "that speaker's tiers) and import the file again.")
        if last is None or phone.end > last[0].end:
            last = (phone, tier)
    return tuple(p for p, _tier in merged)


def read_textgrid(path, duration: Optional[float] = None) -> PhoneTrack:
    """Read a TextGrid's phone tiers (and word tiers) into a PhoneTrack (source "textgrid").

    Raises
    ------
    InputError
        Unreadable or binary file, no phone tier (the message lists the tiers found), bad labels or times,
        phones of two tiers overlapping (both named).
    """
    name = str(path)
    tiers = parse_textgrid(_read_text(path, name), name)
    phone_tiers = _find_tiers(tiers, PHONE_TIERS)
    if not phone_tiers:
        listed = ", ".join(f"'{t}' ({c})" for c, t, _ in tiers) or "none"
        raise InputError(f"'{name}' has no phone tier (an interval tier named 'phones'); its tiers: {listed}. "
                         "Export the phone tier too (Montreal Forced Aligner writes 'words' and 'phones').")
    word_tiers = _find_tiers(tiers, WORD_TIERS)
    # speaker → (tier, track); one speaker's two phone tiers ('phones' and 'phonemes' of one converter) give
    # the first that holds phones, not both
    chosen = {}
    for speaker, tier, intervals in phone_tiers:
        own = [items for s, _t, items in word_tiers if s == speaker] or \
            [items for s, _t, items in word_tiers if s == ""]
        word_items = [(a, b, t.strip()) for items in own for a, b, t in items]
        track = _tier_track(name, tier, intervals, word_items, duration)
        if speaker not in chosen or not chosen[speaker][1].phones:
            chosen[speaker] = (tier, track)
    tracks = list(chosen.values())
    phones = tracks[0][1].phones if len(tracks) == 1 else _merge(name, tracks)
    return PhoneTrack(phones, "textgrid")


def _q(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _filled(spans, xmax):
    """Intervals covering [0, xmax] with empty text in the gaps (Praat's interval tiers are contiguous)."""
    out, t = [], 0.0
    for a, b, text in spans:
        if a > t:
            out.append((t, a, ""))
        out.append((a, b, text))
        t = b
    if xmax > t:
        out.append((t, xmax, ""))
    return out


def word_spans(phones) -> List[Tuple[float, float, str]]:
    """Consecutive phones of the same non-empty word, merged into (start, end, word)."""
    spans = []
    for p in phones:
        if not p.word:
            continue
        if spans and spans[-1][2] == p.word and abs(spans[-1][1] - p.start) < 1e-9:
            spans[-1] = (spans[-1][0], p.end, p.word)
        else:
            spans.append((p.start, p.end, p.word))
    return spans


def format_textgrid(phones: Tuple[Phone, ...], xmax: float) -> str:
    """A long-format TextGrid with tiers "words" and "phones" (MFA's layout), times in seconds to 1 µs like
    the JSON and TSV (no float noise such as 0.6900000000000001; rounding keeps the order)."""
    phones = tuple(p._replace(start=round(p.start, 6), end=round(p.end, 6)) for p in phones)
    xmax = max(round(xmax, 6), phones[-1].end if phones else 0.0)
    tiers = [("words", _filled(word_spans(phones), xmax)),
             ("phones", _filled([(p.start, p.end, p.phone) for p in phones], xmax))]
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax!r}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for i, (tier, intervals) in enumerate(tiers, 1):
        lines += [f"    item [{i}]:", '        class = "IntervalTier"', f"        name = {_q(tier)}",
                  "        xmin = 0", f"        xmax = {xmax!r}", f"        intervals: size = {len(intervals)}"]
        for j, (a, b, text) in enumerate(intervals, 1):
            lines += [f"        intervals [{j}]:", f"            xmin = {a!r}", f"            xmax = {b!r}",
                      f"            text = {_q(text)}"]
    return "\n".join(lines) + "\n"
