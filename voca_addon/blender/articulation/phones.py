"""Where Animate from audio's phone track comes from, and the worker that finds it beside DeepSpeech.

A run's :class:`PhoneRequest` (built on the main thread from the Articulation sub-panel) names the source, in
this order of precedence:

1. an alignment file the artist imported (Praat TextGrid, Rhubarb TSV / JSON, the project's JSON):
   :func:`voca_addon.core.phonemes.read_alignment`;
2. a transcript: the panel's text, else its ``.txt`` file, else ``AUDIO.txt`` beside the audio
   (:func:`~voca_addon.core.phonemes.transcript_for`): forced alignment with PocketSphinx;
3. nothing: detection from the audio alone with PocketSphinx.

:func:`start` runs :func:`phone_track` in a :class:`~..worker.WorkerJob` (thread ``voca-phones``) so the
phoneme pass runs while the Animate worker runs DeepSpeech and VOCA; the decoding itself runs in a child
Python (:func:`~voca_addon.core.phonemes.phones_in_process`: PocketSphinx holds the GIL while it decodes)
when ``sys.executable`` is a Python of this version (Blender's bundled one, or the venv's with the bpy
module: :func:`~voca_addon.core.phonemes.child_python`), else in that thread; a cancel kills the child; :func:`finish` joins it and hands back
a :class:`PhoneOutcome`. Without PocketSphinx in this Python (Debian's Blender 5.2 runs CPython 3.14, for
which there is no wheel) sources 2 and 3 give a track of None and one line saying so
(:class:`~voca_addon.core.phonemes.PhonemesUnavailable`): the run goes on with VOCA's exact result, and an
alignment file still works. Every other error (a bad alignment file, an empty transcript file) is the
user's and stops the run before anything is written; an unexpected failure of the recogniser is logged
(:mod:`voca_addon.core.errorlog`) and, like a missing PocketSphinx, leaves the run without closures, one line
saying so.

Contract: no ``bpy``; any thread. Imports :mod:`voca_addon.core` (the phonemes package lazily: the add-on
registers even while it is missing) and :mod:`..worker`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from ...core import errorlog
from ...core.errors import InputError, VocaError
from ..worker import WorkerJob


@dataclass(frozen=True)
class PhoneRequest:
    """Where a run's phone track comes from (absolute paths; None / '' = not given)."""

    alignment_path: Optional[str] = None
    transcript: Optional[str] = None            # the transcript's text (the panel's field)
    transcript_path: Optional[str] = None       # a .txt file holding it


@dataclass(frozen=True)
class PhoneOutcome:
    """The phone track (None when it could not be made) and one line for the artist (or None)."""

    track: object = None                        # core.phonemes.PhoneTrack
    message: Optional[str] = None


def check_request(request: Optional[PhoneRequest], audio_path: Optional[str] = None) -> None:
    """Cheap checks before a run (main thread, before the worker): the named files exist, the transcript file
    is not empty, and with neither an alignment nor a transcript, the ``AUDIO.txt`` beside ``audio_path``
    (used on its own) is readable and holds words. The alignment file's content is checked by
    :func:`read_alignment` (it is small).

    Raises
    ------
    InputError
        A missing alignment / transcript file, or an empty transcript file (given, or beside the audio).
    """
    if request is None:
        return
    if audio_path and not (request.alignment_path or (request.transcript or "").strip() or request.transcript_path):
        from ...core import phonemes
        phonemes.transcript_for(audio_path)
    if request.alignment_path:
        if not os.path.isfile(request.alignment_path):
            raise InputError(f"The alignment file '{request.alignment_path}' was not found; choose another one "
                             "or clear the field.")
        read_alignment(request.alignment_path)
    if request.transcript_path and not (request.transcript or "").strip():
        if not os.path.isfile(request.transcript_path):
            raise InputError(f"The transcript file '{request.transcript_path}' was not found; choose another "
                             "one or clear the field.")
        with open(request.transcript_path, encoding="utf-8", errors="replace") as handle:
            if not handle.read().strip():
                raise InputError(f"The transcript file '{request.transcript_path}' is empty; write what is said "
                                 "in it, or clear the field to detect the phones from the audio.")


def read_alignment(path: str, duration: Optional[float] = None):
    """:func:`voca_addon.core.phonemes.read_alignment` (imported here, lazily)."""
    from ...core import phonemes
    return phonemes.read_alignment(path, duration)


def detector_status() -> tuple:
    """(ok, one line when not): whether PocketSphinx can be used in this Python (cached after the first call)."""
    if not _DETECTOR:
        try:
            from ...core import phonemes
            _DETECTOR.append(tuple(phonemes.detector_available()))
        except ImportError as exc:                  # the phonemes package itself is missing: say so
            _DETECTOR.append((False, f"Phoneme detection is not available ({exc})."))
    return _DETECTOR[0]


_DETECTOR: list = []


def _transcript(request: PhoneRequest, audio_path: str) -> Optional[str]:
    from ...core import phonemes
    if (request.transcript or "").strip():
        return request.transcript.strip()
    if request.transcript_path:
        with open(request.transcript_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    return phonemes.transcript_for(audio_path)


def phone_track(request: PhoneRequest, audio_path: str, progress: Optional[Callable] = None,
                channel=0) -> PhoneOutcome:
    """The run's phone track from ``request`` (see the module docstring). Any thread; no ``bpy``.

    ``channel``: the run's audio channel (0, 1, … or ``"mix"``), as VOCA hears it: the phones are found on the
    same channel (a stereo file with channel 0 silent and the speech on 1 is detected on 1).

    Raises
    ------
    VocaError
        A bad alignment or transcript file (PocketSphinx missing is not an error: track None and one line).
    """
    from ...core import phonemes
    if request.alignment_path:
        return PhoneOutcome(phonemes.read_alignment(request.alignment_path), None)
    try:
        report = None if progress is None else (lambda f, *a: progress(f, "phonemes"))
        phonemes.detector_module()          # PocketSphinx missing here: said here, no child is started
        transcript = _transcript(request, audio_path)
        if channel == 0 and phonemes.child_python():   # a Python beside Blender's: no GIL shared (the
            # child reads the file's channel 0; another channel is loaded here and decoded in this thread)
            def compute():
                return phonemes.phones_in_process(audio_path, transcript, progress=report)
        else:                               # sys.executable is no Python of this version: this thread
            def compute():
                return phonemes.phones_for_audio(_audio(audio_path, channel), transcript, report)
        track = phonemes.cached_track(audio_path, transcript, compute, channel=channel)   # kept by content
    except phonemes.PhonemesUnavailable as exc:
        return PhoneOutcome(None, f"No lip closures: {exc}")
    except VocaError:
        raise
    except Exception as exc:        # noqa: BLE001 — a failing recogniser must not cost the artist the animation
        log = errorlog.write_error_log(exc, "phoneme detection")
        return PhoneOutcome(None, f"No lip closures: the phone detection failed ({errorlog.one_line(exc, log)})")
    warnings = tuple(getattr(track, "warnings", ()))
    return PhoneOutcome(track, "; ".join(warnings) or None)


def _audio(audio_path: str, channel):
    """The path (channel 0: the phonemes stage reads it), else the chosen channel as a loaded Audio."""
    if channel == 0:
        return audio_path
    from ...core.speech import audio
    return audio.select_channel(audio.load_audio(audio_path), channel)


def start(request: Optional[PhoneRequest], audio_path: str, channel=0) -> Optional[WorkerJob]:
    """:func:`phone_track` in its own worker thread (``voca-phones``), or None without a request."""
    if request is None:
        return None
    return WorkerJob(lambda progress: phone_track(request, audio_path, progress, channel), "phones").start()


def finish(job: Optional[WorkerJob], cancel: bool = False) -> Optional[PhoneOutcome]:
    """Wait for ``job`` and return its outcome (re-raising its error); ``cancel`` stops it instead."""
    if job is None:
        return None
    if cancel:
        job.cancel()
        return None
    job.join()
    for message in job.drain():
        if message[0] == "DONE":
            return message[1]
        if message[0] == "ERROR":
            raise message[1]                        # a Cancelled too: the run stops
    raise RuntimeError("the phoneme worker ended without a result")   # programmer error: worker protocol


__all__ = ["PhoneRequest", "PhoneOutcome", "check_request", "read_alignment", "detector_status", "phone_track",
           "start", "finish"]
