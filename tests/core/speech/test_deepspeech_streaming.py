"""Streaming DeepSpeech features and logits: block by block equals the whole array, on real speech
long enough to cross several blocks (and so the forward outputs parked in a temporary file)."""
import numpy as np
import pytest

from tests.core.test_parity import relative_error, speech_16k
from voca_addon.core.errors import InputError
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import deepspeech, features

SECONDS = 40.0             # 2000 DeepSpeech steps, 4000 MFCC frames
REL_TOL = 1e-6             # max |Δ| / max |whole| (the brief's bound)


@pytest.fixture(scope="module")
def speech(shared_data):
    return speech_16k(shared_data, SECONDS)


@pytest.fixture(scope="module")
def ds_model(ds_small_pb, model_cache):
    return modelfiles.load_deepspeech(ds_small_pb, model_cache)


def test_mfcc_blocks_equal_one_block(speech):
    whole = features.mfcc(speech, chunk=10 ** 7)
    assert whole.shape == (features.frame_count(len(speech)), 26)
    head = features.frame_count(48000) - 1                  # frames of the first 3 s (the last one is padded)
    for chunk in (1, 300, 1001):                            # equal to BLAS summation order (1 row: gemv)
        np.testing.assert_allclose(features.mfcc(speech[:48000], chunk=chunk)[:head], whole[:head],
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(features.mfcc(speech, chunk=777), whole, rtol=1e-12, atol=1e-12)
    # Only the kept frames are computed: stride 2 equals every second frame (to BLAS summation order).
    np.testing.assert_allclose(features.mfcc(speech, stride=2, chunk=777), whole[::2], rtol=1e-12, atol=1e-12)


def test_deepspeech_input_statistics_and_rows_equal_the_whole_array(speech):
    source = features.DeepSpeechInput.from_signal(speech, chunk=500)
    steps = features.mfcc(speech)[::2]
    assert source.num_steps == len(steps) == 2000
    # The whole [T, 494] array as VOCA builds it, and its global statistics.
    padded = np.concatenate([np.zeros((9, 26)), steps, np.zeros((9, 26))])
    whole = padded[np.arange(len(steps))[:, None] + np.arange(19)].reshape(len(steps), 494)
    assert abs(source.mean - whole.mean()) <= 1e-12 * abs(whole.mean())
    assert abs(source.std - whole.std()) <= 1e-12 * whole.std()
    blocks = np.concatenate([source.rows(a, min(a + 333, 2000)) for a in range(0, 2000, 333)])
    np.testing.assert_array_equal(blocks, features.deepspeech_input(speech))
    np.testing.assert_allclose(blocks, (whole - whole.mean()) / whole.std(), rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="outside"):
        source.rows(1990, 2001)


def test_frame_windows_equal_make_windows(speech):
    per_frame = np.random.default_rng(0).standard_normal((1000, 29)).astype(np.float32)
    whole = features.make_windows(per_frame)
    for chunk in (1, 7, 999, 1000):
        blocks = np.concatenate([features.frame_windows(per_frame, a, min(a + chunk, 1000))
                                 for a in range(0, 1000, chunk)])
        np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(features.frame_windows(per_frame[:3], 0, 3), features.make_windows(per_frame[:3]))


def test_deepspeech_streamed_equals_whole_array_across_blocks(speech, ds_model):
    inputs = features.deepspeech_input(speech)
    whole = deepspeech.logits(ds_model, inputs)
    source = features.DeepSpeechInput.from_signal(speech)
    seen = []
    streamed = deepspeech.logits_streamed(ds_model, source.rows, source.num_steps, chunk=256,
                                          progress=seen.append)        # 8 blocks
    err = relative_error(streamed, whole)
    print(f"streamed vs whole DeepSpeech logits, 8 blocks of 256 steps: relative error {err:.2g}")
    assert streamed.shape == whole.shape == (2000, 29) and err <= REL_TOL
    assert len(seen) == 4000 and seen[-1] == 1.0 and np.all(np.diff(seen) > 0)
    # One block is exactly the whole-array path.
    np.testing.assert_array_equal(deepspeech.logits_streamed(ds_model, source.rows, 2000, chunk=2000), whole)


def test_deepspeech_streamed_refuses_wrong_rows(ds_model):
    with pytest.raises(InputError, match="494"):
        deepspeech.logits_streamed(ds_model, lambda a, b: np.zeros((b - a, 26), np.float32), 10)
    with pytest.raises(InputError, match="at least one step"):
        deepspeech.logits_streamed(ds_model, lambda a, b: np.zeros((b - a, 494), np.float32), 0)


def test_release_pages_hands_a_mapped_array_back_and_reads_the_same_bytes(tmp_path):
    """The forward kernel's pages after the forward pass: a memory-mapped array's resident pages leave the
    process (Linux ``/proc/self/statm``) and reading it again gives the same values; an array in RAM is not
    touched."""
    from voca_addon.core.speech.deepspeech import release_pages
    values = np.random.default_rng(3).standard_normal(16 * 2 ** 20).astype(np.float32)     # 64 MiB
    np.save(tmp_path / "k.npy", values)
    mapped = np.ascontiguousarray(np.load(tmp_path / "k.npy", mmap_mode="r"), np.float32)  # as the model holds it

    def resident_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2 ** 20
    total = float(mapped.sum(dtype=np.float64))                     # every page read: resident
    before = resident_mb()
    assert release_pages(mapped)
    assert before - resident_mb() > 0.9 * 64
    assert float(mapped.sum(dtype=np.float64)) == total and np.array_equal(mapped, values)
    in_ram = values.copy()
    assert not release_pages(in_ram) and np.array_equal(in_ram, values)
