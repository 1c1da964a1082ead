"""The 16 kHz int16 conversion in blocks equals the whole-signal conversion on real speech."""
import numpy as np
import pytest

from voca_addon.core.errors import AudioError
from voca_addon.core.speech import audio, blocks16k
from voca_addon.core.speech.resample import resample


@pytest.fixture(scope="module")
def speech(shared_data):
    clip = audio.load_audio(shared_data / "audio" / "test_sentence.wav")
    return clip.samples if clip.samples.ndim == 1 else clip.samples[:, 0], clip.rate


def test_blocks16k_equal_whole_signal_at_its_own_rate(shared_data):
    clips = sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))
    parts = [audio.load_audio(c) for c in clips]
    long = audio.Audio(np.concatenate([p.samples if p.samples.ndim == 1 else p.samples[:, 0] for p in parts]),
                       parts[0].rate)                                       # 65 s of 22 kHz speech
    whole = audio.prepare_for_deepspeech(long)
    blocks = blocks16k.prepare_in_blocks(long, block_s=7.0)                 # 10 blocks
    assert blocks.dtype == np.int16 and len(blocks) == len(whole) > 10 * 7 * 16000 * 0.9
    np.testing.assert_array_equal(blocks, whole)


@pytest.mark.parametrize("rate, channel", [(44100, 1), (48000, 0), (8000, "mix"), (11025, 1), (16000, 0),
                                           (16001, "mix")])
def test_blocks16k_equal_whole_signal_at_other_rates_and_channels(speech, rate, channel):
    x0, rate0 = speech
    x = resample(np.tile(x0, 3), rate0, rate)                                # 15 s of real speech
    clip = audio.Audio(np.stack([x, 0.5 * x], axis=1), rate)
    np.testing.assert_array_equal(blocks16k.prepare_in_blocks(clip, channel, block_s=2.0),
                                  audio.prepare_for_deepspeech(clip, channel))


def test_blocks16k_refuses_a_silent_channel_like_the_whole_path(speech):
    x0, rate0 = speech
    x = np.tile(x0, 4)
    clip = audio.Audio(np.stack([x, np.zeros_like(x)], axis=1), rate0)
    with pytest.raises(AudioError, match="channel 1 is silent"):
        blocks16k.prepare_in_blocks(clip, 1, block_s=2.0)
    with pytest.raises(AudioError, match="channel 1 is silent"):
        audio.prepare_for_deepspeech(clip, 1)
