"""features: MFCC parity with python_speech_features 0.6, VOCA's audioToInputVector, 50→60 fps, windows."""
import numpy as np
import pytest

from voca_addon.core.speech import features as ft
from voca_addon.core.speech.audio import load_audio, prepare_for_deepspeech
from voca_addon.core.errors import InputError

psf = pytest.importorskip("python_speech_features", reason="python_speech_features 0.6 is the reference")


def voca_audio_to_input_vector(audio, fs, numcep, numcontext):
    """VOCA's audioToInputVector (utils/audio_handler.py), written from its description, as the reference."""
    features = psf.mfcc(audio, samplerate=fs, numcep=numcep)[::2]
    num_strides = len(features)
    empty_context = np.zeros((numcontext, numcep), dtype=features.dtype)
    features = np.concatenate((empty_context, features, empty_context))
    window_size = 2 * numcontext + 1
    train_inputs = np.lib.stride_tricks.as_strided(
        features, (num_strides, window_size, numcep),
        (features.strides[0], features.strides[0], features.strides[1]), writeable=False)
    train_inputs = np.copy(np.reshape(train_inputs, [num_strides, -1]))
    return (train_inputs - np.mean(train_inputs)) / np.std(train_inputs)


@pytest.fixture(scope="module")
def signals(shared_data):
    """Every shared clip through VOCA's audio path: int16 at 16 kHz."""
    clips = sorted((shared_data / "audio").rglob("*.wav"))
    assert len(clips) == 18
    return {clip.name if clip.parent.name == "audio" else f"{clip.parent.name}/{clip.name}":
            prepare_for_deepspeech(load_audio(clip)) for clip in clips}


def test_mfcc_matches_python_speech_features_on_shared_clips(signals):
    worst = 0.0
    for name, signal in signals.items():
        ours = ft.mfcc(signal)
        reference = psf.mfcc(signal, 16000, numcep=26)
        assert ours.shape == reference.shape == (ft.frame_count(len(signal)), 26), name
        # Framing, pre-emphasis, power spectrum and frame energy are bit-identical (coefficient 0) ...
        assert np.array_equal(ours[:, 0], reference[:, 0]), name
        worst = max(worst, np.abs(ours - reference).max())
    # ... and the DCT (a matrix here, an FFT in scipy) differs by summation order only: measured 1.3e-12.
    assert worst <= 1e-11


@pytest.mark.parametrize("rate", [8000, 22050])       # 22050: 551.25 / 220.5 samples, rounded half-up
def test_mfcc_matches_python_speech_features_at_other_rates(rate):
    signal = (np.random.default_rng(rate).standard_normal(rate) * 3000).astype(np.int16)
    assert np.abs(ft.mfcc(signal, rate) - psf.mfcc(signal, rate, numcep=26)).max() <= 1e-11


@pytest.mark.parametrize("length", [1, 399, 400, 401, 560, 561])
def test_mfcc_frame_count_and_padding_of_short_signals(length):
    signal = (np.random.default_rng(length).standard_normal(length) * 1000).astype(np.int16)
    ours = ft.mfcc(signal)
    expected = 1 if length <= 400 else 1 + int(np.ceil((length - 400) / 160))
    assert ours.shape == (expected, 26)
    assert np.abs(ours - psf.mfcc(signal, 16000, numcep=26)).max() <= 1e-11


def test_mfcc_replaces_zero_energy_by_eps_like_reference():
    signal = np.zeros(1600, dtype=np.int16)
    signal[:200] = 1000                                  # later frames are exactly zero
    ours = ft.mfcc(signal)
    assert np.all(ours[-3:, 0] == np.log(np.finfo(float).eps))
    assert np.abs(ours - psf.mfcc(signal, 16000, numcep=26)).max() <= 1e-11
    with pytest.raises(InputError):
        ft.mfcc(np.zeros(0, dtype=np.int16))


def test_dct_matrix_is_orthonormal_dct_ii():
    from scipy.fftpack import dct
    v = np.random.default_rng(0).standard_normal((5, 26))
    assert np.abs(v @ ft.dct_matrix(26).T - dct(v, type=2, axis=1, norm="ortho")).max() < 1e-13
    assert np.allclose(ft.dct_matrix(26) @ ft.dct_matrix(26).T, np.eye(26), atol=1e-14)


def test_mel_filterbank_matches_reference():
    assert np.array_equal(ft.mel_filterbank(16000), psf.get_filterbanks(26, 512, 16000, 0, 8000))


def test_deepspeech_input_matches_voca_audio_to_input_vector(signals):
    worst = 0.0
    for name, signal in signals.items():
        ours = ft.deepspeech_input(signal)
        reference = voca_audio_to_input_vector(signal, 16000, 26, 9)
        steps = -(-ft.frame_count(len(signal)) // 2)
        assert ours.dtype == np.float32 and ours.shape == reference.shape == (steps, 494), name
        worst = max(worst, np.abs(ours - reference).max())
        # Measured: every value equals the reference rounded to float32; allow a rare 1-ulp flip.
        assert np.mean(ours == reference.astype(np.float32)) >= 0.9999, name
    # float32 rounding of values that agree to ~1e-13 in float64: measured 2.4e-7 (half a float32 step).
    assert worst <= 5e-7


def test_deepspeech_input_layout_is_frame_major_context(signals):
    signal = signals["test_sentence.wav"]
    steps = ft.mfcc(signal)[::2]
    raw = np.concatenate([np.zeros((9, 26)), steps, np.zeros((9, 26))])
    ours = ft.deepspeech_input(signal).astype(np.float64)
    windows = raw[np.arange(len(steps))[:, None] + np.arange(19)].reshape(len(steps), 494)
    mean, std = windows.mean(), windows.std()
    assert np.allclose(ours, (windows - mean) / std, atol=1e-6)
    # Row t, block k = 9 is step t itself; row 0 blocks 0..8 are the zero padding.
    assert np.allclose(ours[:, 9 * 26:10 * 26], (steps - mean) / std, atol=1e-6)
    assert np.allclose(ours[0, :9 * 26], -mean / std, atol=1e-6)
    assert abs(ours.astype(np.float64).mean()) < 1e-6 and abs(ours.astype(np.float64).std() - 1) < 1e-6


def test_num_output_frames_matches_official_outputs(shared_data):
    import scipy.io.wavfile
    for clip, output in (("test_sentence.wav", "output_test_sentence_cond3.npz"), ("test.wav", "output_test.npz")):
        rate, samples = scipy.io.wavfile.read(shared_data / "audio" / clip)
        frames = np.load(shared_data / "voca_official" / output)["vertices"].shape[0]
        assert ft.num_output_frames(len(samples), rate) == frames          # 306 and 287
    assert ft.num_output_frames(400, 16000) == 2        # 1.5 frames: Python's round goes to even
    assert ft.num_output_frames(1200, 16000) == 4       # 4.5 -> 4
    assert ft.num_output_frames(1467, 22000) == 4       # 4.0009 -> 4


def test_interpolate_logits_is_linear_from_50_to_60_fps():
    logits = np.random.default_rng(0).standard_normal((50, 29))
    out = ft.interpolate_logits(logits, 62)
    assert out.shape == (62, 29) and out.dtype == np.float64
    position = np.arange(62) * 50 / 60                  # output frame m at input step 5m/6
    j = np.minimum(np.floor(position).astype(int), 48)
    w = (position - j)[:, None]
    expected = np.where(position[:, None] >= 49, logits[-1], (1 - w) * logits[j] + w * logits[j + 1])
    assert np.abs(out - expected).max() < 1e-12
    assert np.array_equal(out[::6][:10], logits[::5][:10])   # every 0.1 s both grids meet exactly
    assert np.array_equal(out[59:], np.repeat(logits[-1:], 3, axis=0))   # held after the last input step
    with pytest.raises(InputError):
        ft.interpolate_logits(np.zeros((0, 29)), 5)


def test_make_windows_reproduces_voca_loop():
    features = np.random.default_rng(1).standard_normal((23, 29))
    ours = ft.make_windows(features)
    padded = np.concatenate((np.zeros((8, 29)), features, np.zeros((8, 29))))
    reference = np.array([padded[i:i + 16] for i in range(0, padded.shape[0] - 16, 1)])
    assert ours.shape == (23, 16, 29) and np.array_equal(ours, reference)
    assert np.array_equal(ours[0, 8], features[0]) and not ours[0, :8].any()
    assert np.array_equal(ours[22, 8], features[22]) and not ours[22, 9:].any()
    assert ft.make_windows(features[:1]).shape == (1, 16, 29)
