"""VOCA's audio path (one channel → 16 kHz → int16) over blocks of the signal, in bounded memory.

:func:`~voca_addon.core.speech.audio.prepare_for_deepspeech` resamples the whole signal at once; its
index tables cost ~100 bytes per output sample (5.5 GB for an hour). :func:`prepare_in_blocks` gives
the same int16 signal block by block:

- the output is cut into blocks of ``period_out`` samples × k (``period_out / period_in`` = 16000 / rate
  reduced), so every block starts at an input sample ``s0 = k0 · period_in / period_out`` exactly;
- each block is resampled from the input ``s0 − pad .. s1 + pad``, ``pad`` (a whole number of periods)
  longer than the filter's reach (``NUM_ZEROS / min(1, ratio)`` input samples), so every output sample
  sees the same input samples as in the whole-signal run, and the block's outputs are cut from it.

The output times are then ``j / ratio`` from the block's start instead of ``k / ratio`` from the
signal's, the same instants up to float64 rounding (~1e-16 relative), so a sample can differ from the
whole-signal run by one int16 step where the value lies within ~1e-9 of an integer (measured on real
speech below: see ``tests/core/speech/test_blocks16k.py``). Short signals (one block) take the
whole-signal path unchanged.

Contract: numpy only; pure, any thread.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np

from ..errors import AudioError
from . import audio as audio_mod
from .resample import NUM_ZEROS, resample

BLOCK_SECONDS = 30.0       # s of output per block (~10 MB of resampling intermediates)


def prepare_in_blocks(audio: "audio_mod.Audio", channel=0, block_s: float = BLOCK_SECONDS) -> np.ndarray:
    """``audio.prepare_for_deepspeech(audio, channel)`` computed block by block.

    Parameters
    ----------
    audio : Audio
        Decoded audio (float64 int16 scale, [n] or [n, channels]).
    channel : int or 'mix'
        As in :func:`~voca_addon.core.speech.audio.to_mono`.
    block_s : float
        Seconds of 16 kHz output per block (memory, not the result).

    Returns
    -------
    np.ndarray
        int16 [int(n · 16000 / rate)].

    Raises
    ------
    AudioError, InputError
        As :func:`~voca_addon.core.speech.audio.prepare_for_deepspeech`.
    """
    if audio.num_samples * float(audio_mod.SAMPLE_RATE) / audio.rate <= _block_length(audio.rate, block_s):
        return audio_mod.prepare_for_deepspeech(audio, channel)
    audio_mod.check_speech(audio)

    def mono(start: int, stop: int) -> np.ndarray:
        return audio_mod.to_mono(audio_mod.Audio(audio.samples[start:stop], audio.rate, audio.path), channel)
    return convert_blocks(mono, audio.rate, audio.num_samples, audio.path, channel, block_s)


def _block_length(rate: int, block_s: float) -> int:
    period_out = audio_mod.SAMPLE_RATE // math.gcd(int(rate), audio_mod.SAMPLE_RATE)
    return period_out * max(1, int(round(block_s * audio_mod.SAMPLE_RATE / period_out)))


def output_length(num_samples: int, rate: int) -> int:
    """Samples at 16 kHz for ``num_samples`` at ``rate`` (resampy's ``int(n · 16000 / rate)``)."""
    return int(num_samples * float(audio_mod.SAMPLE_RATE) / float(rate))


def iter_blocks(mono: Callable[[int, int], np.ndarray], rate: int, num_samples: int, path: str = "",
                channel=0, block_s: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """One channel of any sample source → consecutive 16 kHz int16 blocks (see the module docstring).

    Parameters
    ----------
    mono : callable(start, stop) -> float64 [stop - start]
        The chosen channel of input samples ``start .. stop-1`` (int16 scale).
    rate, num_samples : int
        Input rate (Hz) and length (samples).
    path, channel : for the message when the result is silent.

    Yields
    ------
    np.ndarray
        int16 blocks, ``output_length(num_samples, rate)`` samples in all.

    Raises
    ------
    AudioError
        (after the last block) every output sample is 0.
    """
    rate, out_rate = int(rate), audio_mod.SAMPLE_RATE
    g = math.gcd(rate, out_rate)
    period_in, period_out = rate // g, out_rate // g
    n_out = output_length(num_samples, rate)
    block = _block_length(rate, block_s)
    reach = NUM_ZEROS / min(1.0, out_rate / rate) + 2                          # input samples
    pad = period_in * math.ceil(reach / period_in)
    heard = False
    for k0 in range(0, n_out, block):
        k1 = min(k0 + block, n_out)
        s0 = max(0, k0 // period_out * period_in - pad)                      # a multiple of period_in
        s1 = min(num_samples, -(-k1 // period_out) * period_in + pad)
        piece = mono(s0, s1)
        first = k0 - s0 // period_in * period_out                            # output k0 in the piece
        y = resample(piece, rate, out_rate) if rate != out_rate else piece
        out = audio_mod.to_int16_like_voca(y[first:first + (k1 - k0)])
        heard = heard or bool(np.any(out))
        yield out
    if not heard:
        name = f"'{path}'" if path else "The audio"
        raise AudioError(f"{name}: channel {channel} is silent (or below one int16 step). "
                         "Choose another channel, channel='mix', or a louder recording.")


def convert_blocks(mono: Callable[[int, int], np.ndarray], rate: int, num_samples: int, path: str = "",
                   channel=0, block_s: float = BLOCK_SECONDS) -> np.ndarray:
    """:func:`iter_blocks` joined: int16 [output_length(num_samples, rate)]."""
    return np.concatenate(list(iter_blocks(mono, rate, num_samples, path, channel, block_s)))
