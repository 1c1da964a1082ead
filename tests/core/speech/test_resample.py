"""resample: parity with resampy 0.4.3 (VOCA's resampler, filter 'kaiser_best'), speed, refusals."""

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.special

from voca_addon.core.speech import resample as rs
from voca_addon.core.errors import AudioError, InputError

resampy = pytest.importorskip("resampy", reason="resampy 0.4.3 (reference) is in requirements-dev.txt")


def test_resample_filter_table_regenerates_resampy_kaiser_best():
    from resampy.filters import load_filter
    stored, precision, rolloff = load_filter("kaiser_best")
    table = rs.kaiser_best_table()
    assert int(precision) == rs.TABLE_PER_ZERO and float(rolloff) == rs.ROLLOFF
    assert table.shape == stored.shape == (rs.NUM_ZEROS * rs.TABLE_PER_ZERO + 1,)
    # numpy's i0 (what the add-on uses): off by at most 3.3e-16 on a table that peaks at 0.917.
    assert np.abs(table - stored).max() <= 4e-16
    # The same formula with scipy's i0 reproduces resampy's stored table bit for bit.
    n = rs.NUM_ZEROS * rs.TABLE_PER_ZERO
    alpha = float(n)
    arg = np.sqrt(1 - ((np.arange(n, 2 * n + 1) - alpha) / alpha) ** 2.0)
    taper = scipy.special.i0(rs.KAISER_BETA * arg) / scipy.special.i0(rs.KAISER_BETA)
    sinc = rs.ROLLOFF * np.sinc(rs.ROLLOFF * np.linspace(0, rs.NUM_ZEROS, num=n + 1, endpoint=True))
    assert np.array_equal(taper * sinc, stored)


@pytest.mark.parametrize("clip", ["test_sentence.wav", "test.wav"])  # 22 kHz and 44.1 kHz
def test_resample_matches_resampy_on_shared_clips(shared_data, clip):
    rate, audio = scipy.io.wavfile.read(shared_data / "audio" / clip)
    reference = resampy.resample(audio.astype(float), rate, 16000)
    ours = rs.resample(audio.astype(float), rate, 16000)
    assert ours.dtype == np.float64 and ours.shape == reference.shape
    # Measured: 1.0e-11 (22 kHz) and 4.4e-11 (44.1 kHz) int16 units, i.e. ~1e-15 of full scale.
    assert np.abs(ours - reference).max() < 1e-9
    assert np.array_equal(ours.astype(np.int16), reference.astype(np.int16))


@pytest.mark.parametrize("rate_in, rate_out", [
    (44100, 16000), (22050, 16000), (11025, 16000), (8000, 16000), (48000, 16000),
    (44101, 16000), (16000, 44100), (7, 5), (16000, 15999), (9550, 16000), (163400, 16000)])
def test_resample_matches_resampy_on_other_ratios(rate_in, rate_out):
    x = np.random.default_rng(rate_in).standard_normal(rate_in // 3 + 17) * 1000.0
    reference = resampy.resample(x, rate_in, rate_out)
    ours = rs.resample(x, rate_in, rate_out)
    assert ours.shape == reference.shape == (int(x.shape[0] * rate_out / rate_in),)
    assert np.abs(ours - reference).max() <= 1e-12 * np.abs(reference).max()


def test_resample_tap_by_tap_path_matches_resampy():
    # Outputs whose float time breaks the periodic pattern (measured: ~10 % of them at 9550 -> 16000 Hz,
    # ~1 % at 163400 Hz, none at 22/44.1 kHz) are computed tap by tap; check that path on its own.
    x = np.random.default_rng(4).standard_normal(9550)
    ratio = 16000 / 9550
    n_out = int(x.shape[0] * 16000 / 9550)
    positions = rs._positions(np.arange(n_out) * (1.0 / ratio), 1.0)
    win, delta = rs._filter(ratio)
    direct = rs._direct(x, *positions, rs.TABLE_PER_ZERO, win, delta)
    assert np.abs(direct - resampy.resample(x, 9550, 16000)).max() < 1e-12


def test_resample_same_rate_returns_float_copy():
    x = np.arange(1000, dtype=np.int16)
    y = rs.resample(x, 16000, 16000)
    assert y.dtype == np.float64 and np.array_equal(y, x) and not np.shares_memory(y, x)


def test_resample_stereo_resamples_each_channel():
    x = np.random.default_rng(2).standard_normal((4410, 2))
    y = rs.resample(x, 44100, 16000)
    assert y.shape == (1600, 2)
    assert np.array_equal(y[:, 1], rs.resample(x[:, 1], 44100, 16000))


def test_resample_refuses_bad_rates_and_too_short_signals():
    with pytest.raises(InputError, match="rate_in"):
        rs.resample(np.ones(100), 0, 16000)
    with pytest.raises(InputError, match="rate_out"):
        rs.resample(np.ones(100), 16000, 16000.5)
    with pytest.raises(InputError, match="shape"):
        rs.resample(np.ones((2, 2, 2)), 44100, 16000)
    with pytest.raises(AudioError, match="too few"):
        rs.resample(np.ones(2), 44100, 16000)
