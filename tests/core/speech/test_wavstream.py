"""Long WAV files streamed block by block give the same speech features as the whole-file path, and
the same refusals; short or unusual files take the whole-file path."""
import numpy as np
import pytest
from scipy.io import wavfile

from voca_addon.core import engine
from voca_addon.core.errors import AudioError, InputError
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import audio, blocks16k, wavstream


@pytest.fixture(scope="module")
def speech(shared_data):
    """70 s of real VOCASET speech, int16 at its own rate (22 kHz)."""
    clips = sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))
    parts, rate = [], None
    for c in clips * 2:
        rate, x = wavfile.read(c)
        parts.append(x[:, 0] if x.ndim > 1 else x)
    return np.concatenate(parts)[: 70 * rate], rate


def test_wavstream_reads_like_load_audio(speech, tmp_path):
    x, rate = speech
    stereo = np.stack([x, (x // 2)], axis=1)
    for name, data in (("int16.wav", stereo), ("float.wav", (stereo / 32768.0).astype(np.float32))):
        path = tmp_path / name
        wavfile.write(path, rate, data)
        stream = wavstream.open_wav(path, channel=1)
        whole = audio.load_audio(path)
        assert (stream.rate, stream.channels, stream.num_samples) == (whole.rate, 2, whole.num_samples)
        np.testing.assert_array_equal(stream.read(12345, 99999), whole.samples[12345:99999])
        np.testing.assert_array_equal(
            blocks16k.convert_blocks(stream.mono, stream.rate, stream.num_samples, str(path), 1),
            audio.prepare_for_deepspeech(whole, 1))


def test_wavstream_only_for_long_plain_wavs(speech, tmp_path, shared_data):
    assert wavstream.open_wav(shared_data / "audio" / "test_sentence.wav") is None          # 5 s: loaded whole
    x, rate = speech
    (tmp_path / "notwav.wav").write_bytes(b"not a wav at all" * 10)
    assert wavstream.open_wav(tmp_path / "notwav.wav") is None
    wavfile.write(tmp_path / "long.wav", rate, x)
    assert wavstream.open_wav(tmp_path / "long.wav").num_samples == len(x)


def test_wavstream_engine_features_equal_the_loaded_audio(speech, tmp_path, ds_small_pb, model_cache):
    x, rate = speech
    path = tmp_path / "long.wav"
    wavfile.write(path, rate, x)
    ds = modelfiles.load_deepspeech(ds_small_pb, model_cache)
    streamed = engine.speech_features(str(path), ds)                        # a path: streamed
    loaded = engine.speech_features(audio.load_audio(path), ds)            # an Audio: whole
    np.testing.assert_array_equal(streamed.logits, loaded.logits)
    np.testing.assert_array_equal(streamed.frames, loaded.frames)


def test_wavstream_refuses_like_load_audio(speech, tmp_path):
    x, rate = speech
    wavfile.write(tmp_path / "silent.wav", rate, np.zeros_like(x))
    with pytest.raises(AudioError, match="silent .every sample is 0"):
        wavstream.open_wav(tmp_path / "silent.wav").check()
    with pytest.raises(AudioError, match="silent .every sample is 0"):
        audio.load_audio(tmp_path / "silent.wav")
    wavfile.write(tmp_path / "one.wav", rate, np.stack([x, np.zeros_like(x)], axis=1))
    with pytest.raises(AudioError, match="channel 1 of its 2 channels is silent"):
        wavstream.open_wav(tmp_path / "one.wav", 1).check()
    with pytest.raises(InputError, match="channel 2 does not exist"):
        wavstream.open_wav(tmp_path / "one.wav", 2).check()
    bad = (np.stack([x, x], axis=1) / 32768.0).astype(np.float32)
    bad[rate * 50, 0] = np.nan
    wavfile.write(tmp_path / "nan.wav", rate, bad)
    with pytest.raises(AudioError, match="non-finite"):
        wavstream.open_wav(tmp_path / "nan.wav").check()


def test_wavstream_mfcc_from_blocks_equals_mfcc_of_the_signal(speech):
    from voca_addon.core.speech import features
    x, rate = speech
    signal = audio.prepare_for_deepspeech(audio.Audio(x.astype(np.float64), rate))
    whole = features.mfcc(signal, stride=2)
    for sizes in ((16000,) * 100, (1, 399, 7, 160000, 12345), (len(signal),)):
        cuts = np.cumsum((0,) + sizes)
        blocks = [signal[a:b] for a, b in zip(cuts[:-1], np.minimum(cuts[1:], len(signal))) if a < len(signal)]
        blocks.append(signal[min(cuts[-1], len(signal)):])
        np.testing.assert_allclose(features.mfcc_stream(blocks, len(signal), stride=2), whole, rtol=1e-12, atol=1e-12)
    with pytest.raises(InputError, match="blocks hold"):
        features.mfcc_stream([signal[:1000]], len(signal))
