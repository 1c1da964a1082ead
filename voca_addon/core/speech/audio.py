"""Audio files → the int16 16 kHz signal DeepSpeech 0.1.0 gets in VOCA (``utils/audio_handler.py``).

VOCA reads a WAV with ``scipy.io.wavfile`` (int16 values), keeps channel 0, resamples it to 16 kHz with
``resampy.resample(audio.astype(float), rate, 16000)`` and casts with ``.astype('int16')``. This module
reproduces that path: ``prepare_for_deepspeech(load_audio(path))``.

Sample scale. ``Audio.samples`` are float64 in the int16 range (±32768), whatever the container, so the
speech features do not depend on how the file was stored:

- 16-bit PCM: the values themselves (what scipy gives VOCA); 8-bit unsigned PCM: ``(v - 128) * 256``;
  24/32-bit PCM: ``v / 2**(bits - 16)`` (a 16-bit signal stored in 24 or 32 bits comes back exactly).
- float WAV (32/64-bit, nominal range [-1, 1]): ``v * 32768`` (a 16-bit signal stored as float comes back
  exactly). VOCA itself would feed raw float values (≈ ±1) to ``astype(int16)``, i.e. silence: not kept.
- other formats (mp3, flac, ogg, m4a, ...): decoded by Blender's ``aud`` module when it can be imported
  (it returns float32 scaled by 1/32767 for 16-bit sources; a float32 ``* 32767`` gives every int16 value
  of a lossless 16-bit source back exactly), else by ``soundfile`` (float64 scaled by 1/32768, so ``* 32768``). Without either only WAV
  is read and the error says how to convert (``ffmpeg -i in.mp3 -ar 16000 -ac 1 out.wav``).

WAV files are parsed here from their RIFF chunks (the stdlib ``wave`` module reads neither float nor
WAVE_FORMAT_EXTENSIBLE): PCM 8/16/24/32-bit, IEEE float 32/64-bit, plain or extensible, any chunk order,
LIST/odd-sized chunks, a data chunk whose declared size runs past the end of the file (streamed writers).
Compressed WAV codecs (ADPCM, mu-law, ...) go to the decoders above.

Channels: VOCA keeps channel 0 (``audio[:, 0]``); ``to_mono(audio)`` does the same by default,
``to_mono(audio, 'mix')`` averages all channels instead. ``select_channel(audio, channel)`` gives the
chosen channel as a mono :class:`Audio` (what the CLI's ``--channel N|mix`` and a channel setting in Blender
hand to the engine), refusing a channel that does not exist or is silent.

Decoders, the same in every command: WAV is always read here; other formats need Blender's ``aud`` (inside
Blender) or the ``soundfile`` package (outside it; its wheels bundle libsndfile with mp3/flac/ogg). Without
either, the message says what to install or how to convert.

The int16 cast. ``to_int16_like_voca`` truncates toward zero like ``astype('int16')``. numpy wraps
out-of-range values around (+32800 becomes -32736, a full-scale click); this module CLIPS them to
[-32768, 32767] by default instead, a deliberate deviation; ``wrap=True`` reproduces the wrap. On the 18
shared reference clips no resampled sample leaves the int16 range (largest magnitude 23,924), so both give
identical int16 signals there (``tests/core/speech/test_audio.py`` checks it).

Refusals (``AudioError``, naming the file): missing or empty file, a folder, not audio / corrupt header,
no samples, shorter than one MFCC window (25 ms), every sample 0 ("the audio is silent"), non-finite float
samples, a format no available decoder reads.

Contract: stdlib + numpy; ``aud`` / ``soundfile`` are imported lazily inside ``load_audio`` only. Pure
functions, safe on any thread.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import AudioError, InputError
from .resample import resample

__all__ = ["Audio", "load_audio", "check_speech", "to_mono", "select_channel", "resample", "to_int16_like_voca", "prepare_for_deepspeech",
           "SAMPLE_RATE", "MIN_DURATION_S"]

SAMPLE_RATE = 16000        # Hz, DeepSpeech 0.1.0 input rate
MIN_DURATION_S = 0.025     # s, one MFCC window; anything shorter holds no speech frame
INT16_SCALE = 32768.0      # int16 full scale, for float WAV samples in [-1, 1]
AUD_SCALE = 32767.0        # aud converts int16 to float by dividing by 32767
SOUNDFILE_SCALE = 32768.0  # soundfile converts int16 to float by dividing by 32768
WAVE_PCM = 0x0001          # WAV format tags
WAVE_FLOAT = 0x0003
WAVE_EXTENSIBLE = 0xFFFE
CONVERT_HINT = ("Convert it to a WAV file, e.g. `ffmpeg -i input.mp3 -ar 16000 -ac 1 output.wav` "
                "(or open it in Blender, where mp3/flac/ogg are read).")


@dataclass(frozen=True)
class Audio:
    """Decoded audio.

    Attributes
    ----------
    samples : np.ndarray
        float64 [n] (mono) or [n, channels], int16 scale (see module docstring), read-only.
    rate : int
        Sampling rate in Hz.
    path : str
        Where it came from ('' for a signal made in memory); used in error messages.
    """

    samples: np.ndarray
    rate: int
    path: str = ""

    @property
    def channels(self) -> int:
        """Number of channels."""
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def num_samples(self) -> int:
        """Samples per channel."""
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / float(self.rate)


def check_audio_path(path) -> str:
    """The path as a string if it names an existing, non-empty file; else AudioError. Reads nothing."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioError(f"'{path}' is a folder, not an audio file. Choose a .wav file.")
    if not os.path.isfile(path):
        raise AudioError(f"Audio file '{path}' was not found. Check the path.")
    if os.path.getsize(path) == 0:
        raise AudioError(f"Audio file '{path}' is empty (0 bytes). Choose a file that holds a recording.")
    return path


def load_audio(path) -> Audio:
    """Read an audio file.

    Parameters
    ----------
    path : str or os.PathLike
        WAV (read here) or any format ``aud`` / ``soundfile`` decode. Non-ASCII paths work.

    Returns
    -------
    Audio
        samples float64 [n] or [n, channels] in int16 scale, rate in Hz.

    Raises
    ------
    AudioError
        See the module docstring's list of refusals; the message names the file.
    """
    path = check_audio_path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise AudioError(f"Cannot read audio file '{path}': {exc.strerror}.") from exc
    if not data:
        raise AudioError(f"Audio file '{path}' is empty (0 bytes). Choose a file that holds a recording.")
    decoded, kind = None, f"format {os.path.splitext(path)[1] or '(no extension)'}"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        decoded = _parse_wav(data, path)
        kind = "a compressed WAV codec"
    elif path.lower().endswith((".wav", ".wave")):
        raise AudioError(f"'{path}' is not a valid WAV file (no RIFF/WAVE header). {CONVERT_HINT}")
    if decoded is None:
        decoded = _decode_other(path, kind)
    samples, rate = decoded
    audio = Audio(samples=_freeze(samples), rate=rate, path=path)
    check_speech(audio)
    return audio


def check_speech(audio: Audio) -> None:
    """Refuse audio that cannot hold speech: no samples, shorter than 25 ms, every sample 0.

    Raises
    ------
    AudioError
    """
    name = f"'{audio.path}'" if audio.path else "The audio"
    if audio.num_samples == 0:
        raise AudioError(f"{name} contains no audio samples. Choose a file that holds a recording.")
    if audio.duration_s < MIN_DURATION_S:
        raise AudioError(
            f"{name} is only {audio.duration_s * 1000:.1f} ms long; at least {MIN_DURATION_S * 1000:.0f} ms "
            "(one analysis window) of speech is needed.")
    if not np.any(audio.samples):
        raise AudioError(f"{name}: the audio is silent (every sample is 0). Choose a recording with speech.")


def _freeze(samples: np.ndarray) -> np.ndarray:
    samples = np.ascontiguousarray(samples, dtype=np.float64)
    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples[:, 0].copy()
    samples.setflags(write=False)
    return samples


def _chunks(data: bytes):
    """Yield (chunk id, body start, body size) of a RIFF file; sizes running past the end are clamped."""
    pos, end = 12, len(data)
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        start = pos + 8
        yield cid, start, min(size, end - start)
        nxt = start + size + (size & 1)
        # Some writers forget the pad byte after an odd-sized chunk: accept the unpadded position then.
        if size & 1 and not _is_chunk_id(data[nxt:nxt + 4]) and _is_chunk_id(data[nxt - 1:nxt + 3]):
            nxt -= 1
        pos = nxt


def _is_chunk_id(cid: bytes) -> bool:
    return len(cid) == 4 and all(32 <= b < 127 for b in cid)


def _parse_wav(data: bytes, path: str):
    """Decode a RIFF/WAVE byte string → (float64 [n, channels] int16-scale, rate), or None when the codec is
    not PCM/float (then another decoder is tried)."""
    fmt = body = None
    for cid, start, size in _chunks(data):
        if cid == b"fmt " and fmt is None:
            fmt = _parse_fmt(data[start:start + size], path)
        elif cid == b"data" and body is None:
            body = (start, size)
    if fmt is None:
        raise AudioError(f"'{path}' is a corrupt WAV file: it has no 'fmt ' chunk. {CONVERT_HINT}")
    if body is None:
        raise AudioError(f"'{path}' is a corrupt WAV file: it has no 'data' chunk. {CONVERT_HINT}")
    tag, channels, rate, width = fmt
    if tag not in (WAVE_PCM, WAVE_FLOAT):
        return None
    start, size = body
    frames = size // (width * channels)
    raw = data[start:start + frames * width * channels]
    samples = _decode_pcm(raw, tag, width, path).reshape(frames, channels)
    return samples, rate


def _parse_fmt(chunk: bytes, path: str):
    """'fmt ' chunk → (format tag, channels, rate in Hz, bytes per sample)."""
    if len(chunk) < 16:
        raise AudioError(f"'{path}' is a corrupt WAV file: its 'fmt ' chunk is truncated. {CONVERT_HINT}")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == WAVE_EXTENSIBLE:
        if len(chunk) < 40:
            raise AudioError(f"'{path}' is a corrupt WAV file: extensible 'fmt ' chunk is truncated.")
        tag = struct.unpack_from("<H", chunk, 24)[0]   # first two bytes of the sub-format GUID
    if channels == 0 or rate == 0:
        raise AudioError(f"'{path}' is a corrupt WAV file: it declares {channels} channels at {rate} Hz.")
    width = block_align // channels if block_align >= channels else (bits + 7) // 8
    if width == 0:
        raise AudioError(f"'{path}' is a corrupt WAV file: it declares {bits} bits per sample.")
    return tag, channels, rate, width


def _decode_pcm(raw: bytes, tag: int, width: int, path: str) -> np.ndarray:
    """Little-endian samples → float64 [n] in int16 scale."""
    if tag == WAVE_FLOAT and width in (4, 8):
        values = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise AudioError(f"'{path}' holds non-finite (NaN or infinite) samples. Re-export the audio.")
        return values * INT16_SCALE
    if tag == WAVE_PCM and width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if tag == WAVE_PCM and width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if tag == WAVE_PCM and width == 3:
        padded = np.zeros((len(raw) // 3, 4), dtype=np.uint8)
        padded[:, 1:] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        return padded.view("<i4")[:, 0].astype(np.float64) / 2.0 ** 16   # (v << 8) / 2**16 = v / 2**8
    if tag == WAVE_PCM and width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0 ** 16
    kind = "float" if tag == WAVE_FLOAT else "integer PCM"
    raise AudioError(f"'{path}' uses {8 * width}-bit {kind} samples, which are not supported. {CONVERT_HINT}")


def _decode_other(path: str, kind: str):
    """Decode a non-WAV file with Blender's ``aud``, else ``soundfile`` → (float64 [n, c], rate)."""
    try:
        import aud  # Blender's audio module; importable inside Blender only
    except ImportError:
        aud = None
    if aud is not None:
        try:
            sound = aud.Sound(path)
            rate, _channels = sound.specs
            # float32 product: recovers every int16 value exactly (a float64 product is off by ~1e-4).
            samples = (np.asarray(sound.data(), dtype=np.float32) * np.float32(AUD_SCALE)).astype(np.float64)
        except Exception as exc:  # aud raises its own error type for undecodable input
            raise AudioError(f"'{path}' is not a readable audio file ({exc}). {CONVERT_HINT}") from exc
        return _checked_decoded(samples, rate, path)
    try:
        import soundfile
    except ImportError:
        raise AudioError(
            f"'{path}' uses {kind}, and no decoder for it is available outside Blender: install the "
            "soundfile package (pip install soundfile; it reads mp3, flac and ogg). WAV (8/16/24/32-bit "
            f"PCM, 32/64-bit float) is always read. {CONVERT_HINT}") from None
    try:
        samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError
        raise AudioError(f"'{path}' is not a readable audio file ({exc}). {CONVERT_HINT}") from exc
    return _checked_decoded(samples * SOUNDFILE_SCALE, rate, path)


def _checked_decoded(samples: np.ndarray, rate, path: str):
    if float(rate) <= 0 or not float(rate).is_integer():
        raise AudioError(f"'{path}' decodes to an invalid sampling rate ({rate} Hz). {CONVERT_HINT}")
    if samples.ndim == 1:
        samples = samples[:, None]
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"'{path}' decodes to non-finite samples. {CONVERT_HINT}")
    return samples, int(rate)


def to_mono(audio: Audio, channel=0) -> np.ndarray:
    """One channel of ``audio``.

    Parameters
    ----------
    audio : Audio
    channel : int or 'mix'
        Channel index (0 = VOCA's choice, the default) or 'mix' for the mean of all channels.

    Returns
    -------
    np.ndarray
        float64 [n], int16 scale.

    Raises
    ------
    InputError
        The channel does not exist.
    """
    samples = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
    if isinstance(channel, str):
        if channel != "mix":
            raise InputError(f"channel must be a channel number or 'mix', got {channel!r}.")
        return samples.mean(axis=1)
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not (
            0 <= channel < samples.shape[1]):
        raise InputError(f"channel {channel!r} does not exist: the audio has {samples.shape[1]} channel(s) "
                         f"(0..{samples.shape[1] - 1}) or use 'mix'.")
    return np.array(samples[:, channel], dtype=np.float64)


def select_channel(audio: Audio, channel=0) -> Audio:
    """The chosen channel of ``audio`` as mono audio (the engine then uses it as it is).

    Parameters
    ----------
    audio : Audio
    channel : int or 'mix'
        Channel index from 0 (VOCA uses 0) or 'mix' (mean of all channels).

    Returns
    -------
    Audio
        samples float64 [n], int16 scale; same rate and path.

    Raises
    ------
    InputError
        The channel does not exist.
    AudioError
        The chosen channel is silent (every sample 0).
    """
    mono = to_mono(audio, channel)
    if audio.channels > 1 and not np.any(mono):
        raise AudioError(f"'{audio.path}': channel {channel} of its {audio.channels} channels is silent. Choose "
                         "another channel (from 0) or 'mix', the mean of all channels (--channel N|mix on the "
                         "command line).")
    return Audio(samples=_freeze(mono), rate=audio.rate, path=audio.path)


def to_int16_like_voca(signal: np.ndarray, wrap: bool = False) -> np.ndarray:
    """VOCA's ``signal.astype('int16')``: truncation toward zero.

    Parameters
    ----------
    signal : np.ndarray
        float [n], int16 scale, finite.
    wrap : bool
        False (default): out-of-range values are clipped to [-32768, 32767] (deliberate, see module
        docstring). True: they wrap around modulo 2**16 like numpy's cast (exact for |x| < 2**31).

    Returns
    -------
    np.ndarray
        int16 [n].
    """
    truncated = np.trunc(np.asarray(signal, dtype=np.float64))
    if wrap:
        return (np.mod(truncated + 32768.0, 65536.0) - 32768.0).astype(np.int16)
    return np.clip(truncated, -32768.0, 32767.0).astype(np.int16)


def prepare_for_deepspeech(audio: Audio, channel=0) -> np.ndarray:
    """VOCA's audio path: one channel, resampled to 16 kHz (resampy 'kaiser_best'), cast to int16.

    Parameters
    ----------
    audio : Audio
    channel : int or 'mix'
        See ``to_mono``; 0 like VOCA.

    Returns
    -------
    np.ndarray
        int16 [int(n * 16000 / rate)], the signal VOCA gives ``audioToInputVector``.

    Raises
    ------
    AudioError
        The audio is too short or the chosen channel is silent after the cast.
    InputError
        The channel does not exist.
    """
    check_speech(audio)
    mono = to_mono(audio, channel)
    signal = to_int16_like_voca(resample(mono, audio.rate, SAMPLE_RATE))
    if not np.any(signal):
        name = f"'{audio.path}'" if audio.path else "The audio"
        raise AudioError(f"{name}: channel {channel} is silent (or below one int16 step). "
                         "Choose another channel, channel='mix', or a louder recording.")
    return signal
