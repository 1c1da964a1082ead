"""Phoneme stage: a phone track (ARPAbet phones with times and words) for an audio clip.

Three sources: detection from the audio alone and forced alignment of a transcript (both with
PocketSphinx, imported lazily: this package imports without it), and alignment files the user
already has (Praat TextGrid / Montreal Forced Aligner, Rhubarb Lip Sync TSV/JSON, this add-on's JSON).
See docs/phonemes.md for the formats, the measured accuracy and what the detector cannot do.

Public API::

    Phone(phone, start, end, word)                 # ARPAbet, seconds, word '' if none
    PhoneTrack(phones, source, warnings=())        # sorted, non-overlapping, silences not listed
    phones_for_audio(audio, transcript=None, progress=None) -> PhoneTrack
    read_alignment(path, duration=None) -> PhoneTrack
    write_alignment(track, path)                   # .json / .tsv / .TextGrid, through core.outputs
    transcript_for(audio_path) -> str | None       # AUDIO.txt beside the audio
    detector_available() -> (ok, reason)
    detector_module()                              # the pocketsphinx module, or PhonemesUnavailable (one line)
    PhonemesUnavailable                            # a VocaError: no PocketSphinx in this Python
    phones_in_process(audio_path, transcript=None, progress=None) -> PhoneTrack  # the same, in a child process
    child_python() -> bool                         # can sys.executable run that child (a Python of this version)?
    phones_beside(audio, transcript=None, progress=None) -> PhoneTrack  # the child when it can, else this thread;
                                                   # an audio file's track kept by its content (cache.py)
    cached_track(audio_path, transcript, compute, method="words", channel=0) -> PhoneTrack  # that cache

Contract: numpy + stdlib (pocketsphinx only inside calls that need it); no bpy; thread-safe.
"""
from .cache import cached as cached_track
from .child import child_python, phones_beside, phones_in_process
from .files import read_alignment, write_alignment
from .sphinx import PhonemesUnavailable, detector_available
from .sphinx import module as detector_module
from .stage import phones_for_audio, transcript_for
from .track import Phone, PhoneTrack

__all__ = ["Phone", "PhoneTrack", "phones_for_audio", "read_alignment", "write_alignment", "transcript_for",
           "detector_available", "PhonemesUnavailable", "phones_in_process", "child_python", "phones_beside", "detector_module", "cached_track"]
