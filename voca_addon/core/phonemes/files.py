"""Alignment files: read a phone track from a file the user has, write one for other tools.

Formats (chosen by extension):

- ``.TextGrid`` — Praat, long or short text format (Montreal Forced Aligner's "words"/"phones" tiers, every
  speaker's; ARPAbet or IPA labels), see :mod:`.textgrid`. Written in the long format with tiers "words" and
  "phones".
- ``.json`` — ours: a list of ``{"phone": "M", "start": 1.11, "end": 1.18, "word": "myopia"}``
  (seconds, ARPAbet without stress, word '' if none). Rhubarb Lip Sync's JSON (an object with
  ``mouthCues``) is recognised and read too.
- ``.tsv`` — ours: a header ``start<TAB>end<TAB>phone<TAB>word`` then one phone per line. Rhubarb Lip
  Sync's TSV (``time<TAB>shape`` lines, no header) is recognised and read too.

Rhubarb gives mouth shapes, not phones; each shape becomes one representative ARPAbet phone
(:data:`RHUBARB_SHAPES`): A (closed lips) → M, G (upper teeth on the lower lip) → F, X (idle) → silence.

Written the other way (``rhubarb=True``, for tools that take Rhubarb Lip Sync's output: .tsv or .json), each
phone becomes the mouth shape Rhubarb's documentation gives its class (:data:`PHONE_SHAPES`: P/B/M → A, F/V
→ G, …), neighbours with the same shape merge into one cue, and the gaps are X (idle). A Rhubarb file read
and written again gives the same cues: each shape's representative phone maps back to it.

Contract: stdlib only; raises InputError; writes through :func:`voca_addon.core.outputs.write_exact`;
thread-safe.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

from ..errors import InputError, missing_file
from ..outputs import write_exact
from .textgrid import format_textgrid, read_textgrid
from .track import PhoneTrack, alphabet_of, make_track

SUFFIXES = (".json", ".tsv", ".textgrid")
TSV_HEADER = ("start", "end", "phone", "word")
# Rhubarb Lip Sync's mouth shapes (Preston Blair's set) → one ARPAbet phone of the class each shows.
RHUBARB_SHAPES = {
    "A": "M",    # closed lips: P, B, M
    "B": "T",    # slightly open, teeth together: most consonants (K, S, T, EE)
    "C": "EH",   # open: EH, AE
    "D": "AA",   # wide open: AA
    "E": "AO",   # slightly rounded: AO, ER
    "F": "UW",   # puckered: UW, OW, W
    "G": "F",    # upper teeth on the lower lip: F, V
    "H": "L",    # tongue raised: L
    "X": "SIL",  # idle / rest (silence)
}
# ARPAbet → the Rhubarb mouth shape of its class (Rhubarb Lip Sync's README: A closed lips for P/B/M; B
# slightly open, teeth together, for most consonants and the "EE" of "bee"; C open for EH/AE; D wide open for
# AA; E slightly rounded for AO/ER; F puckered for UW/OW/W; G teeth on the lower lip for F/V; H the raised
# tongue of L). Diphthongs take the shape they open with (AY, AW → D; EY → C; OY → E).
PHONE_SHAPES = {
    **dict.fromkeys(("P", "B", "M"), "A"),
    **dict.fromkeys(("K", "G", "NG", "S", "Z", "T", "D", "N", "TH", "DH", "SH", "ZH", "CH", "JH", "HH", "R",
                     "Y", "IY", "IH"), "B"),
    **dict.fromkeys(("EH", "AE", "AH", "EY"), "C"),
    **dict.fromkeys(("AA", "AY", "AW"), "D"),
    **dict.fromkeys(("AO", "ER", "OY"), "E"),
    **dict.fromkeys(("UW", "OW", "UH", "W"), "F"),
    "F": "G", "V": "G", "L": "H",
}
RHUBARB_SUFFIXES = (".json", ".tsv")
RHUBARB_LAST_CUE_S = 0.1     # s, length given to a last non-X Rhubarb TSV cue when the audio's length is unknown
RHUBARB_DURATION_SLACK_S = 0.1   # s, a Rhubarb JSON's metadata.duration this far from the audio's: one warning


def _suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"'{path}': unknown alignment file type '{Path(path).suffix or '(none)'}'. Use a Praat "
                         ".TextGrid, a Rhubarb Lip Sync .tsv/.json or this add-on's phone .json/.tsv.")
    return suffix


def _read_text(path) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read alignment file '{path}': {exc.strerror or exc}. Check the path.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not UTF-8 text. Save it as UTF-8.") from None


def read_alignment(path, duration: Optional[float] = None) -> PhoneTrack:
    """Read a phone track from a TextGrid, a Rhubarb TSV/JSON or this add-on's JSON/TSV.

    Parameters
    ----------
    path : str or os.PathLike
    duration : float, optional
        The audio's length in seconds; times past it are refused.

    Returns
    -------
    PhoneTrack
        source "textgrid", "rhubarb", "json" or "tsv". A well-formed file without one phone (an empty list, a
        header only, silences only) gives an empty track with one warning, in every format alike.

    Raises
    ------
    InputError
        Unknown extension, unreadable or malformed file (an empty or blank file is no alignment in any
        format; a binary TextGrid; Rhubarb cues going backwards or without an end), no phone tier, unsorted
        or overlapping intervals (two speakers' tiers too), times past the audio's end, labels that are not
        phones — one message each. A Rhubarb JSON made for audio of another length: one warning.
    """
    if not os.path.isfile(path):                    # before the extension: a folder is said as such
        raise missing_file("alignment file", path)
    suffix = _suffix(path)
    if suffix == ".textgrid":
        track = read_textgrid(path, duration)
    else:
        text = _read_text(path)
        track = _read_json(text, str(path), duration) if suffix == ".json" else _read_tsv(text, str(path), duration)
    if track.phones:
        return track
    return PhoneTrack((), track.source, track.warnings + (
        f"'{path}' holds no phones (only silences, or none at all): no lip closures come from it.",))


def _read_json(text: str, name: str, duration) -> PhoneTrack:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"'{name}' is not valid JSON ({exc}). Fix the file.") from None
    if isinstance(data, dict) and "mouthCues" in data:
        cues = data["mouthCues"]
        if not isinstance(cues, list) or not all(isinstance(c, dict) for c in cues):
            raise InputError(f"'{name}': Rhubarb's 'mouthCues' must be a list of {{start, end, value}} objects.")
        for i, cue in enumerate(cues):
            missing = next((key for key in ("start", "end", "value") if key not in cue), None)
            if missing:
                raise InputError(f"'{name}': mouth cue {i + 1} has no '{missing}' (each of Rhubarb's cues is a "
                                 "{start, end, value} object). Fix the file.")
        rows = [(c["value"], c["start"], c["end"], f"'{name}', mouth cue {i + 1}") for i, c in enumerate(cues)]
        return _rhubarb(rows, name, duration, _made_for(data.get("metadata"), name, duration))
    if not isinstance(data, list):
        raise InputError(f"'{name}': expected a list of {{phone, start, end, word}} objects (this add-on's "
                         "format) or Rhubarb Lip Sync's JSON (an object with 'mouthCues').")
    items = []
    for i, entry in enumerate(data):
        where = f"'{name}', entry {i + 1}"
        if not isinstance(entry, dict) or not {"phone", "start", "end"} <= set(entry):
            raise InputError(f"{where}: each entry must be an object with 'phone', 'start' and 'end' (seconds) "
                             "and optionally 'word'.")
        phone, word = entry["phone"], entry.get("word", "") or ""
        if not isinstance(phone, str) or not isinstance(word, str):
            raise InputError(f"{where}: 'phone' and 'word' must be strings.")
        items.append((phone, entry["start"], entry["end"], word, where))
    return make_track(items, "json", f"'{name}'", duration, alphabet=alphabet_of((i[0] for i in items), "file"))


def _made_for(metadata, name, duration) -> tuple:
    """One warning when a Rhubarb JSON says it was made for audio of another length than this audio's."""
    made = metadata.get("duration") if isinstance(metadata, dict) else None
    if duration is None or isinstance(made, bool) or not isinstance(made, (int, float)) or not math.isfinite(made):
        return ()
    if abs(made - duration) <= RHUBARB_DURATION_SLACK_S:
        return ()
    return (f"'{name}' was made for {made:.2f} s of audio, this audio is {duration:.2f} s: are these the mouth "
            "cues of another recording?",)


def _rhubarb(rows, name, duration, warnings=()) -> PhoneTrack:
    items = []
    for shape, start, end, where in rows:
        if not isinstance(shape, str) or shape.strip().upper() not in RHUBARB_SHAPES:
            raise InputError(f"{where}: '{shape}' is not a Rhubarb mouth shape (A–H or X).")
        items.append((RHUBARB_SHAPES[shape.strip().upper()], start, end, "", where))
    return make_track(items, "rhubarb", f"'{name}'", duration, warnings)


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: '{text}' is not a time in seconds. Fix the file.") from None


def _read_tsv(text: str, name: str, duration) -> PhoneTrack:
    lines = [(i + 1, line.rstrip("\r")) for i, line in enumerate(text.split("\n")) if line.strip()]
    if not lines:
        raise InputError(f"'{name}' is empty: no phones or mouth cues. Choose a file that holds an alignment.")
    head = tuple(c.strip().lower() for c in lines[0][1].split("\t"))
    if head[:3] == TSV_HEADER[:3]:
        items = []
        for number, line in lines[1:]:
            cells = line.split("\t")
            where = f"'{name}', line {number}"
            if len(cells) not in (3, 4):
                raise InputError(f"{where}: expected start<TAB>end<TAB>phone[<TAB>word], found {len(cells)} "
                                 "column(s).")
            items.append((cells[2], _number(cells[0], where), _number(cells[1], where),
                          cells[3].strip() if len(cells) == 4 else "", where))
        return make_track(items, "tsv", f"'{name}'", duration, alphabet=alphabet_of((i[0] for i in items), "file"))
    cues = []
    for number, line in lines:
        cells = line.split("\t")
        where = f"'{name}', line {number}"
        if len(cells) != 2:
            raise InputError(f"{where}: expected Rhubarb's time<TAB>shape (or this add-on's header "
                             f"start<TAB>end<TAB>phone<TAB>word), found {len(cells)} column(s).")
        cues.append((_number(cells[0], where), cells[1], where, number))
    rows = []
    for k, (start, shape, where, number) in enumerate(cues):
        if k + 1 < len(cues):
            end, later = cues[k + 1][0], cues[k + 1][3]
            if end < start:
                raise InputError(f"'{name}': the cue times go backwards at line {later} ({end} s after {start} s "
                                 f"at line {number}). Rhubarb's cues are in time order, each holding until the "
                                 "next: fix the file.")
        elif shape.strip().upper() == "X":
            end = start
        else:
            # until the audio's end (nothing left of a cue starting at or just past it), else 0.1 s
            end = max(start, duration) if duration is not None else start + RHUBARB_LAST_CUE_S
        rows.append((shape, start, end, where))
    return _rhubarb(rows, name, duration)


def format_json(track: PhoneTrack) -> str:
    """This add-on's JSON: a list of {phone, start, end, word}, times in seconds to 1 µs."""
    return json.dumps([{"phone": p.phone, "start": round(p.start, 6), "end": round(p.end, 6), "word": p.word}
                       for p in track.phones], indent=1) + "\n"


def format_tsv(track: PhoneTrack) -> str:
    """This add-on's TSV: header start/end/phone/word, one phone per line."""
    rows = ["\t".join(TSV_HEADER)] + [f"{p.start:.6f}\t{p.end:.6f}\t{p.phone}\t{p.word}" for p in track.phones]
    return "\n".join(rows) + "\n"


def check_rhubarb_path(path) -> None:
    """InputError unless ``path`` can hold Rhubarb mouth cues (.tsv or .json)."""
    if _suffix(path) not in RHUBARB_SUFFIXES:
        raise InputError(f"'{os.fspath(path)}': Rhubarb Lip Sync's mouth cues are written as .tsv or .json, "
                         "not as a TextGrid.")


def rhubarb_cues(track: PhoneTrack, duration: Optional[float] = None) -> list:
    """Rhubarb mouth cues of ``track``: [(start, end, shape)], contiguous from 0 to the end (``duration`` or
    the last phone's end), X where no phone is, neighbours of one shape merged."""
    cues: list = []

    def add(start: float, end: float, shape: str) -> None:
        if end <= start:
            return
        if cues and cues[-1][2] == shape and abs(cues[-1][1] - start) <= 1e-9:
            cues[-1] = (cues[-1][0], end, shape)
        else:
            cues.append((start, end, shape))
    at = 0.0
    for p in track.phones:
        add(at, p.start, "X")
        add(p.start, p.end, PHONE_SHAPES[p.phone])
        at = max(at, p.end)
    add(at, max(at, duration or 0.0), "X")
    return cues


def format_rhubarb_tsv(track: PhoneTrack, duration: Optional[float] = None) -> str:
    """Rhubarb Lip Sync's TSV: ``time<TAB>shape`` per cue (each holds until the next), ending with X."""
    cues = rhubarb_cues(track, duration)
    lines = [f"{start:.3f}\t{shape}" for start, _end, shape in cues]
    if not cues or cues[-1][2] != "X":
        lines.append(f"{cues[-1][1] if cues else 0.0:.3f}\tX")
    return "\n".join(lines) + "\n"


def format_rhubarb_json(track: PhoneTrack, duration: Optional[float] = None) -> str:
    """Rhubarb Lip Sync's JSON: ``{"metadata": {"duration": …}, "mouthCues": [{start, end, value}, …]}``."""
    cues = rhubarb_cues(track, duration)
    return json.dumps({"metadata": {"duration": round(cues[-1][1] if cues else 0.0, 6)},
                       "mouthCues": [{"start": round(s, 6), "end": round(e, 6), "value": v} for s, e, v in cues]},
                      indent=1) + "\n"


def within(track: PhoneTrack, duration: float) -> PhoneTrack:
    """``track`` with its phones cut at ``duration`` (s); a phone with no length left is left out."""
    phones = tuple(p._replace(end=min(p.end, duration)) for p in track.phones if min(p.end, duration) > p.start)
    return track if phones == track.phones else PhoneTrack(phones, track.source, track.warnings)


def write_alignment(track: PhoneTrack, path, duration: Optional[float] = None, rhubarb: bool = False) -> Path:
    """Write ``track`` to ``path`` (.json / .tsv / .TextGrid by extension), all or nothing.

    Parameters
    ----------
    track : PhoneTrack
    path : str or os.PathLike
    duration : float, optional
        The audio's length (the TextGrid's xmax, Rhubarb's last X); default the last phone's end. Nothing is
        written past it: phones are cut at it, one with no length left is left out.
    rhubarb : bool
        Rhubarb Lip Sync's mouth cues instead of phones (.tsv or .json).

    Raises
    ------
    InputError
        Unknown extension (or .TextGrid with ``rhubarb``); the folder missing or not writable.
    """
    suffix = _suffix(path)
    if rhubarb:
        check_rhubarb_path(path)
    if duration is not None:
        track = within(track, duration)
    dest = Path(os.path.abspath(os.fspath(path)))
    if not dest.parent.is_dir():
        raise InputError(f"cannot write '{dest}': the folder '{dest.parent}' does not exist. Create it first.")
    if rhubarb:
        text = (format_rhubarb_json if suffix == ".json" else format_rhubarb_tsv)(track, duration)
    elif suffix == ".json":
        text = format_json(track)
    elif suffix == ".tsv":
        text = format_tsv(track)
    else:
        end = max([p.end for p in track.phones], default=0.0)
        text = format_textgrid(track.phones, end if duration is None else duration)

    def write(temp):
        with open(temp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return write_exact(dest, write)
