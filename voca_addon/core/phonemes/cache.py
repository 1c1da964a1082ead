"""Phone tracks kept by content: the same audio found again is read back, not decoded again.

Detection costs PocketSphinx about a second of CPU per second of speech, and an artist animates the same
line many times (another style, another emotion, a re-run after an undo); a batch resumed or run again
meets the same files. The track of an audio *file* is therefore kept under
:func:`~voca_addon.core.caches.cache_dir` ``/phones/KEY.json``, where KEY is the SHA-256 of

- the file's bytes (its content, not its name or time),
- the transcript (or none: detection), the method and the audio channel,
- the detector's fingerprint: the phoneme stage's own source files, the audio reading and resampling it
  uses (``core/speech/audio.py``, ``resample.py``) and PocketSphinx's version — a changed detector never
  serves a track an older one found.

A hit returns a track equal to the one computed (phones, source, warnings); a missing, unreadable or
damaged entry is computed again and rewritten (through :mod:`voca_addon.core.outputs`: temporary + rename,
so a reader never sees half a file). ``VOCA_PHONE_CACHE=0`` turns the cache off (the pass always runs).
Errors are never kept: a run that raises leaves no entry.

Contract: stdlib only; any thread; entries are written atomically, so runs side by side are safe.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Optional

from ..caches import cache_dir
from .track import Phone, PhoneTrack

VERSION = 1                 # the entry's layout
CHUNK = 1 << 20             # bytes read at a time while hashing the audio
_FINGERPRINT: list = []     # the detector's, computed once per process


def enabled() -> bool:
    """False when ``VOCA_PHONE_CACHE`` is ``0`` / ``off`` / ``no`` / ``false``."""
    return os.environ.get("VOCA_PHONE_CACHE", "1").strip().lower() not in ("0", "off", "no", "false")


def fingerprint() -> str:
    """SHA-256 of the phoneme stage's source files, the audio reading and resampling it uses, and PocketSphinx's
    version (once per process)."""
    if not _FINGERPRINT:
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        speech = here.parent / "speech"
        for path in sorted(here.glob("*.py")) + [speech / "audio.py", speech / "resample.py"]:
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        try:
            from importlib.metadata import version
            h.update(version("pocketsphinx").encode())
        except Exception:          # noqa: BLE001 - no metadata (a vendored copy): the sources decide alone
            h.update(b"pocketsphinx ?")
        _FINGERPRINT.append(h.hexdigest())
    return _FINGERPRINT[0]


def key(audio_path, transcript: Optional[str], method: str, channel=0) -> str:
    """The entry's name for this audio file's content and these settings."""
    h = hashlib.sha256()
    with open(audio_path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    settings = json.dumps([VERSION, fingerprint(), transcript, method, str(channel)])
    h.update(b"\0" + settings.encode())
    return h.hexdigest()


def _entry(name: str) -> Path:
    return cache_dir() / "phones" / f"{name}.json"


def _read(path: Path) -> Optional[PhoneTrack]:
    try:
        data = json.loads(path.read_text("utf-8"))
        phones = tuple(Phone(str(p), float(s), float(e), str(w)) for p, s, e, w in data["phones"])
        return PhoneTrack(phones, str(data["source"]), tuple(str(w) for w in data["warnings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None                 # missing or damaged: computed again


def _write(path: Path, track: PhoneTrack) -> None:
    from ..errors import VocaError
    from ..outputs import write_exact
    text = json.dumps({"phones": [list(p) for p in track.phones], "source": track.source,
                       "warnings": list(track.warnings)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_exact(path, lambda temp: temp.write_text(text, "utf-8"), fault_points=False)
    except (OSError, VocaError):
        pass                        # a read-only or full cache only costs the next run's time


def cached(audio_path, transcript: Optional[str], compute: Callable[[], PhoneTrack], method: str = "words",
           channel=0) -> PhoneTrack:
    """The track of ``audio_path`` with these settings: kept, or ``compute()`` and keep it.

    Parameters
    ----------
    audio_path : str or os.PathLike
        An audio file (its bytes are the key).
    transcript : str or None
    compute : callable() -> PhoneTrack
        The pass itself; what it raises passes through and nothing is kept.
    method, channel
        Part of the key (``channel``: 0, 1, … or ``"mix"``).
    """
    if not enabled():
        return compute()
    try:
        entry = _entry(key(audio_path, transcript, method, channel))
    except OSError:
        return compute()            # unreadable audio: the pass says so in its own words
    track = _read(entry)
    if track is None:
        track = compute()
        _write(entry, track)
    return track
