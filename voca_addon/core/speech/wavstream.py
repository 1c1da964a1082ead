"""Long WAV files read block by block, so an hour of speech never sits in memory as float64.

:func:`open_wav` reads only the RIFF chunk headers (``fmt `` and where ``data`` starts) and returns a
:class:`WavStream` whose :meth:`~WavStream.read` decodes any range of sample frames with the same rules
as :func:`~voca_addon.core.speech.audio.load_audio` (int16 scale, float64). The engine then converts
it to DeepSpeech's 16 kHz int16 signal block by block (:mod:`.blocks16k`), giving the same samples as
the whole-file path.

Only plain cases stream: a PCM / IEEE-float WAV at least ``STREAM_MIN_S`` long whose ``fmt `` chunk
comes before its ``data`` chunk. Everything else (short files, other codecs, odd layouts, other
formats) returns None and takes :func:`~voca_addon.core.speech.audio.load_audio`, with all its checks.
:meth:`WavStream.check` makes the refusals ``load_audio`` + ``select_channel`` would make (silent file,
missing or silent channel, non-finite samples) in one bounded pass, so a command can refuse bad audio
before it loads any model.

Contract: stdlib + numpy; reads the file, never writes; any thread.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..errors import AudioError
from . import audio as audio_mod

STREAM_MIN_S = 60.0          # s; shorter files are simply loaded whole
BLOCK_FRAMES = 1 << 20       # sample frames per block in check()


@dataclass(frozen=True)
class WavStream:
    """A WAV file's layout; samples are read on demand.

    Attributes
    ----------
    path : str
    rate : int
        Hz.
    channels : int
    tag, width : int
        WAVE format tag (PCM 1 / float 3) and bytes per sample.
    offset : int
        Byte offset of the first sample frame.
    num_samples : int
        Sample frames in the file.
    channel : int or 'mix'
        The channel the engine uses (see :func:`~voca_addon.core.speech.audio.to_mono`).
    """
    path: str
    rate: int
    channels: int
    tag: int
    width: int
    offset: int
    num_samples: int
    channel: Union[int, str] = 0

    @property
    def duration_s(self) -> float:
        return self.num_samples / float(self.rate)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop-1``: float64 [n, channels], int16 scale (as ``load_audio``)."""
        start, stop = max(0, start), min(stop, self.num_samples)
        frame = self.width * self.channels
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start * frame)
            raw = handle.read(max(0, stop - start) * frame)
        return audio_mod._decode_pcm(raw, self.tag, self.width, self.path).reshape(-1, self.channels)

    def mono(self, start: int, stop: int) -> np.ndarray:
        """The chosen channel of frames ``start .. stop-1``: float64 [n] (InputError for a missing channel)."""
        return audio_mod.to_mono(audio_mod.Audio(self.read(start, stop), self.rate, self.path), self.channel)

    def check(self) -> None:
        """Refuse what ``select_channel(load_audio(path), channel)`` refuses, reading block by block.

        Raises
        ------
        AudioError
            Every sample is 0, the chosen channel is silent, or a float sample is not finite.
        InputError
            The channel does not exist.
        """
        any_sample = any_channel = False
        for start in range(0, self.num_samples, BLOCK_FRAMES):
            block = self.read(start, start + BLOCK_FRAMES)
            any_sample = any_sample or bool(np.any(block))
            any_channel = any_channel or bool(np.any(
                audio_mod.to_mono(audio_mod.Audio(block, self.rate, self.path), self.channel)))
        if not any_sample:
            raise AudioError(f"'{self.path}': the audio is silent (every sample is 0). Choose a recording with "
                             "speech.")
        if not any_channel:
            raise AudioError(f"'{self.path}': channel {self.channel} of its {self.channels} channels is silent. "
                             "Choose another channel (--channel N, from 0) or --channel mix.")


def open_wav(path, channel: Union[int, str] = 0, min_seconds: float = STREAM_MIN_S) -> Optional[WavStream]:
    """A :class:`WavStream` for a plain PCM / float WAV of at least ``min_seconds``, else None.

    Reads the chunk headers only. None also for anything unusual; the caller then uses ``load_audio``,
    which reports every problem with the file.
    """
    try:
        path = audio_mod.check_audio_path(path)
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(12)[0:4] != b"RIFF":
                return None
            handle.seek(8)
            if handle.read(4) != b"WAVE":
                return None
            fmt = None
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return None
                cid, length = header[:4], struct.unpack("<I", header[4:])[0]
                if cid == b"fmt ":
                    fmt = audio_mod._parse_fmt(handle.read(length), path)
                    handle.seek(length & 1, os.SEEK_CUR)
                elif cid == b"data":
                    return _stream(path, fmt, handle.tell(), min(length, size - handle.tell()), channel,
                                   min_seconds)
                else:
                    handle.seek(length + (length & 1), os.SEEK_CUR)
    except (OSError, AudioError, struct.error):
        return None


def _stream(path: str, fmt, offset: int, data_bytes: int, channel, min_seconds: float) -> Optional[WavStream]:
    if fmt is None:
        return None
    tag, channels, rate, width = fmt
    if tag not in (audio_mod.WAVE_PCM, audio_mod.WAVE_FLOAT):
        return None
    frames = data_bytes // (width * channels)
    if frames < min_seconds * rate:
        return None
    return WavStream(path, int(rate), channels, tag, width, offset, frames, channel)
