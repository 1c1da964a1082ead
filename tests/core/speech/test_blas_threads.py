"""The engine's recurrence beside the phone child: one BLAS thread fewer while a core is lent, the same
logits bit for bit, the count given back when the child ends (voca_addon/core/speech/blas.py).

Real speech (VOCASET), the full-size DeepSpeech 0.1.0 graph with random weights (its 2048 × 8192 recurrent
kernel is large enough for OpenBLAS to split the matrix-vector product over threads; a width-64 one is not).
Whether one thread fewer gives the same bits is this BLAS's property (its kernels depend on the CPU): the
limit is taken where :func:`blas.same_result` holds for both kernels, else the threads stay — both cases
assert the same logits bit for bit.
"""
import numpy as np
import pytest

from threadpoolctl import threadpool_limits

from tests.core.test_batch_recurrence import blas_threads as blas_thread_counts
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import audio, blas, deepspeech, features


@pytest.fixture(scope="module")
def ds_full(ds_full_pb, model_cache):
    return modelfiles.load_deepspeech(ds_full_pb, model_cache)


@pytest.fixture(scope="module")
def inputs(shared_data):
    path = shared_data / "audio" / "vocaset" / "FaceTalk_170809_00138_TA" / "sentence02.wav"
    return features.deepspeech_input(audio.prepare_for_deepspeech(audio.load_audio(path)))


@pytest.fixture(scope="module")
def alone(ds_full, inputs):
    with threadpool_limits(2, user_api="blas"):
        return deepspeech.logits(ds_full, inputs)


@pytest.fixture(scope="module")
def limited(ds_full):
    """The thread count a lent core leaves the recurrence on this BLAS: 1, or 2 where one thread fewer would
    change the product's bits (then nothing is limited)."""
    control = blas.controller()
    assert control is not None                       # numpy's OpenBLAS, found by threadpoolctl
    with threadpool_limits(2, user_api="blas"):
        same = all(blas.same_result(control, ds_full.lstm(d)[1], 2, 1) for d in ("fw", "bw"))
    return {1} if same else {2}


def blas_threads():
    return set(blas_thread_counts())


def run(model, inputs, hook=None):
    """The logits with BLAS at two threads, and the thread counts seen at each step (fraction → counts)."""
    seen = []

    def progress(fraction):
        seen.append((fraction, blas_threads()))
        if hook is not None:
            hook(fraction)
    with threadpool_limits(2, user_api="blas"):
        assert blas_threads() == {2}
        out = deepspeech.logits(model, inputs, progress=progress)
        after = blas_threads()
    return out, seen, after


def test_a_lent_core_takes_one_thread_and_changes_no_bit(ds_full, inputs, alone, limited):
    assert len(inputs) > 4 * deepspeech.THREAD_CHECK_STEPS
    with blas.core_lent():
        assert blas.cores_lent() == 1
        out, seen, after = run(ds_full, inputs)
    assert blas.cores_lent() == 0
    assert {c for _, counts in seen for c in counts} == limited  # every step, both directions
    assert after == {2}                                          # given back when the call ends
    assert np.array_equal(out, alone)                            # bit for bit
    assert not blas.LIMIT.locked()


def test_the_thread_comes_back_when_the_child_ends(ds_full, inputs, alone, limited):
    """The child ends mid-run: within THREAD_CHECK_STEPS steps the recurrence has both threads again."""
    lent = blas.core_lent()
    lent.__enter__()
    ended = []

    def child_ends(fraction):
        if fraction >= 0.5 and not ended:
            lent.__exit__(None, None, None)
            ended.append(fraction)
    try:
        out, seen, after = run(ds_full, inputs, child_ends)
    finally:
        if not ended:
            lent.__exit__(None, None, None)
    steps = len(inputs)
    before_end = [c for f, c in seen if f < 0.5]
    late = [c for f, c in seen if f > 0.5 + (deepspeech.THREAD_CHECK_STEPS + 1) / (2 * steps)]
    assert before_end and all(c == limited for c in before_end)
    assert late and all(c == {2} for c in late)
    assert after == {2} and np.array_equal(out, alone)


def test_a_product_that_would_change_keeps_its_threads(ds_full, inputs, alone, monkeypatch):
    """Where one thread fewer would change the product's bits (another BLAS), nothing is limited."""
    _, kh, _ = ds_full.lstm("fw")
    monkeypatch.setattr(blas, "_same", {(kh.shape, kh.dtype.str, 2, 1): False})
    with blas.core_lent():
        out, seen, after = run(ds_full, inputs)
    assert {c for _, counts in seen for c in counts} == {2} and after == {2}
    assert np.array_equal(out, alone)


def test_the_limit_of_another_holder_is_left_alone(ds_full, inputs, alone):
    """A batch recurrence holds the process-wide limit: the lent core does not touch the threads."""
    assert blas.LIMIT.acquire(blocking=False)
    try:
        with blas.core_lent():
            out, seen, after = run(ds_full, inputs)
        assert blas.LIMIT.locked()
    finally:
        blas.LIMIT.release()
    assert {c for _, counts in seen for c in counts} == {2} and after == {2}
    assert np.array_equal(out, alone)


def test_same_result_compares_the_real_product(ds_full):
    """The check itself, against the products it compares: its verdict is whether one and two threads give
    the same bits for those states, and the thread count is back at two afterwards."""
    _, kh, _ = ds_full.lstm("bw")
    control = blas.controller()
    states = np.random.default_rng(0).standard_normal((3, kh.shape[0])).astype(np.float32)
    with threadpool_limits(2, user_api="blas"):
        blas._same.clear()
        verdict = blas.same_result(control, kh, 2, 1)
        assert blas_threads() == {2}
        two = [np.dot(h, kh) for h in states]
    with threadpool_limits(1, user_api="blas"):
        one = [np.dot(h, kh) for h in states]
    assert verdict == all(np.array_equal(a, b) for a, b in zip(one, two))

