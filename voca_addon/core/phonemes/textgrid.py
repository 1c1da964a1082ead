"""Praat TextGrid files (long and short text formats): read phones (and words), write both tiers.

Reading follows Praat's own rule for text files: labels (``xmin =``, ``item [1]:``) are skipped; only
quoted strings, numbers and ``<exists>`` carry data, in a fixed order. So both the long
("self-documenting") and the short format are read by one tokenizer. UTF-8 and UTF-16 (with BOM, as
Praat writes files holding non-ASCII text) are accepted.

The phone tier is the interval tier named ``phones`` (Montreal Forced Aligner), ``phone``,
``phonemes``, ``phoneme`` or ``segments`` (any case; MFA's per-speaker ``SPEAKER - phones`` too); the
word tier, if any, ``words``/``word``. Each phone takes the word whose interval holds its midpoint.

Contract: stdlib only; raises InputError; thread-safe.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ..errors import InputError
from .track import Phone, PhoneTrack, make_track

PHONE_TIERS = ("phones", "phone", "phonemes", "phoneme", "segments")
WORD_TIERS = ("words", "word")
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
    if r.take(str, '"ooTextFile"') != "ooTextFile" or r.take(str, '"TextGrid"') != "TextGrid":
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


def _find_tier(tiers, names) -> Optional[tuple]:
    for cls, tier, items in tiers:
        key = tier.strip().lower()
        key = key.split(" - ")[-1].strip()           # MFA multi-speaker: "speaker1 - phones"
        if cls == "IntervalTier" and key in names:
            return tier, items
    return None


def read_textgrid(path, duration: Optional[float] = None) -> PhoneTrack:
    """Read a TextGrid's phone tier (and word tier) into a PhoneTrack (source "textgrid").

    Raises
    ------
    InputError
        Unreadable file, no phone tier (the message lists the tiers found), bad labels or times.
    """
    name = str(path)
    try:
        with open(path, "rb") as handle:
            text = _decode(handle.read(), name)
    except OSError as exc:
        raise InputError(f"cannot read alignment file '{name}': {exc.strerror or exc}.") from None
    tiers = parse_textgrid(text, name)
    found = _find_tier(tiers, PHONE_TIERS)
    if found is None:
        listed = ", ".join(f"'{t}' ({c})" for c, t, _ in tiers) or "none"
        raise InputError(f"'{name}' has no phone tier (an interval tier named 'phones'); its tiers: {listed}. "
                         "Export the phone tier too (Montreal Forced Aligner writes 'words' and 'phones').")
    tier_name, intervals = found
    words = _find_tier(tiers, WORD_TIERS)
    word_items = [(a, b, t.strip()) for a, b, t in words[1]] if words else []

    def word_at(mid):
        for a, b, t in word_items:
            if a <= mid < b:
                return t
        return ""

    items = [(text, a, b, word_at((a + b) / 2), f"'{name}', tier '{tier_name}', interval {i + 1}")
             for i, (a, b, text) in enumerate(intervals)]
    return make_track(items, "textgrid", f"'{name}'", duration)


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
