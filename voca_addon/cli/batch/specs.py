"""What crosses process boundaries in a batch: a group's task, a clip's result, a clip's output names.

Contract: stdlib only; every class is picklable (``--workers`` processes and Dask workers receive them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .inputs import ClipSpec
from ...core.errors import InputError


@dataclass(frozen=True)
class GroupTask:
    """Everything a worker needs for one group (plain paths and values: it crosses process boundaries)."""
    clips: Tuple[ClipSpec, ...]
    out_dir: str
    formats: Tuple[str, ...]
    voca: str
    deepspeech: str
    template: str
    fps: float = 60.0
    cache: Optional[str] = None
    emotion_source: Optional[str] = None
    character: Optional[object] = None      # batch_character.BatchCharacter (--target), fitted once
    closures: bool = True                   # lip-closure corrections (not --no-closures)
    detect: bool = True                     # PocketSphinx importable: detection / transcript alignment
    phonemes: Optional[str] = None          # also NAME.phonemes.EXT (json, tsv, TextGrid)


@dataclass
class ClipResult:
    """A clip's outcome: ``ok`` / ``failed`` / ``skipped``, seconds spent, frames, outputs, error; where its
    phones came from (``phones``: their count, None without a phone pass; ``source``) and that pass's
    ``warnings`` (a transcript that did not match, unknown words: one line each)."""
    name: str
    audio: str
    outcome: str
    seconds: float = 0.0
    frames: int = 0
    outputs: List[str] = field(default_factory=list)
    error: str = ""
    phones: Optional[int] = None
    source: str = ""            # the PhoneTrack's source ("detected", "aligned", "textgrid", …) or ''
    warnings: List[str] = field(default_factory=list)

    @property
    def phones_text(self) -> str:
        """"12 phones detected" as the progress line and the summary say it; '' without a phone pass."""
        if self.phones is None:
            return ""
        return f"{self.phones} phone{'' if self.phones == 1 else 's'} {self.source}"


PHONEME_EXTS = {"json": "json", "tsv": "tsv", "textgrid": "TextGrid"}


def output_paths(out_dir: str, name: str, formats) -> List[str]:
    """The files a clip named ``name`` gets, in ``formats`` order (``phonemes.EXT``: the phone track)."""
    return [os.path.join(out_dir, f"{name}.{fmt}") for fmt in formats]


def phonemes_format(ext: Optional[str]) -> tuple:
    """``--phonemes EXT`` as the extra output "format" ``("phonemes.EXT",)`` (or ``()``)."""
    if ext is None:
        return ()
    if ext.strip().lower().lstrip(".") not in PHONEME_EXTS:
        raise InputError(f"--phonemes '{ext}': choose json, tsv or TextGrid (each clip's phones are written "
                         "as NAME.phonemes.EXT)")
    return (f"phonemes.{PHONEME_EXTS[ext.strip().lower().lstrip('.')]}",)
