"""The batch's input: INPUT (a folder of audio files or a CSV) → the clips, and the ``--format`` list.

A folder is searched recursively; a clip's name is its path below the folder without the suffix, ``/``
→ ``-``. A CSV has a header: ``audio`` (required; relative paths are relative to the CSV's folder) and
optionally ``style`` (``3`` or ``1:0.5,4:0.5``), ``emotion``, ``strength``, ``name``, ``transcript`` (what is
said: the text, or a ``.txt`` file relative to the CSV's folder) and ``alignment`` (a TextGrid / Rhubarb /
our JSON phone file, relative to the CSV's folder); a bad row becomes a clip with a ``problem`` (reported,
the others go on). A clip without a transcript uses ``AUDIO.txt`` beside its audio when there is one (a
folder INPUT always). Two clips with one name refuse the whole batch.

Contract: stdlib only (``--help`` stays instant); errors that refuse the batch raise
:class:`~voca_addon.core.errors.InputError`.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ...core.errors import InputError, VocaError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".aif", ".aiff")
CSV_COLUMNS = ("audio", "style", "emotion", "strength", "name", "transcript", "alignment")
SAFE_NAME = re.compile(r"[^\w.-]+")          # \w: letters and digits of every script, and _
CORE_FORMATS = ("npz", "csv")
BLENDER_FORMATS = ("blend", "mp4", "glb", "fbx", "abc", "usd")
FORMATS = CORE_FORMATS + BLENDER_FORMATS


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the batch, as read from the input. ``problem``: why the row is unusable, else None."""
    name: str
    audio: str
    condition: object = 3
    emotion: Optional[str] = None
    strength: float = 1.0
    problem: Optional[str] = None
    transcript: Optional[str] = None        # the CSV's text, or a .txt path (absolute); None: AUDIO.txt if any
    alignment: Optional[str] = None         # absolute path of the clip's phone file, or None


def clip_name(text: str) -> str:
    """A file-name-safe clip name (letters and digits of any script — 台词, Müller — and ``._-``; anything
    else → ``_``)."""
    return SAFE_NAME.sub("_", text).strip("._") or "clip"


def _style(text: str, default):
    from ..common import parse_style
    text = (text or "").strip()
    if not text:
        return default
    if text.isdigit():
        return int(text)
    return parse_style(text)


def read_folder(folder: Path, default_condition) -> List[ClipSpec]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [ClipSpec(clip_name("-".join(p.relative_to(folder).with_suffix("").parts)), str(p.resolve()),
                     default_condition) for p in files]


def _resolve(path: Path) -> Path:
    """``path`` made absolute, links followed where they lead somewhere (a loop of links stays as given:
    the clip's reader then says what it is, for that clip alone)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):         # a symlink loop (RuntimeError before Python 3.13, OSError after)
        return Path(os.path.abspath(path))


def _csv_row(row: dict, line: int, base: Path, default_condition) -> ClipSpec:
    audio = (row.get("audio") or "").strip()
    path = _resolve(base / audio) if audio else base
    name = clip_name((row.get("name") or "").strip() or Path(audio).stem or f"row{line}")
    spec = dict(name=name, audio=str(path))
    try:
        if not audio:
            raise InputError(f"line {line} has no audio file")
        spec["condition"] = _style(row.get("style"), default_condition)
        strength = (row.get("strength") or "").strip()
        spec["strength"] = float(strength) if strength else 1.0
        if not (math.isfinite(spec["strength"]) and 0 <= spec["strength"] <= 2):
            raise InputError(f"line {line}: strength must be between 0 and 2, got {strength}")
        spec["emotion"] = (row.get("emotion") or "").strip() or None
        transcript = (row.get("transcript") or "").strip()
        if transcript:
            spec["transcript"] = (str(_resolve(base / transcript)) if transcript.lower().endswith(".txt")
                                  else transcript)
        alignment = (row.get("alignment") or "").strip()
        if alignment:
            spec["alignment"] = str(_resolve(base / alignment))
        if transcript and alignment:
            raise InputError("it has a transcript and an alignment; give one (the alignment file already "
                             "holds the phones)")
    except (VocaError, ValueError) as exc:
        spec["problem"] = f"line {line} of the CSV: {' '.join(str(exc).split())}"
    return ClipSpec(**spec)


def read_csv(path: Path, default_condition) -> List[ClipSpec]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "audio" not in header:
                raise InputError(f"'{path}' needs a header row with an 'audio' column (and optionally "
                                 f"{', '.join(CSV_COLUMNS[1:])})")
            reader.fieldnames = header
            return [_csv_row(row, k, path.parent, default_condition) for k, row in enumerate(reader, start=2)]
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not a text CSV (UTF-8); save it as CSV") from None


def read_input(text: str, default_condition=3) -> List[ClipSpec]:
    """The clips of INPUT (a folder or a CSV). Raises InputError for no clips or duplicate names."""
    path = Path(text)
    if path.is_dir():
        clips = read_folder(path, default_condition)
    elif path.is_file() and path.suffix.lower() == ".csv":
        clips = read_csv(path, default_condition)
    else:
        what = "it is a file but not a .csv" if path.is_file() else "it was not found"
        raise InputError(f"INPUT '{text}' must be a folder of audio files or a .csv file; {what}")
    if not clips:
        raise InputError(f"'{text}' holds no clips (audio files: {', '.join(AUDIO_SUFFIXES)})")
    seen = {}
    for c in clips:
        if c.name in seen:
            raise InputError(f"two clips are named '{c.name}' ({seen[c.name]} and {c.audio}); their outputs "
                             "would overwrite each other: give them different names (CSV column 'name')")
        seen[c.name] = c.audio
    return clips


def parse_formats(text: str) -> tuple:
    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"--format '{text}': choose from {','.join(FORMATS)}")
    return formats
