"""The batched DeepSpeech recurrence and the batched pipeline against one-clip runs, on real speech.

Clips: the 16 VOCASET recordings in ../shared/data/audio/vocaset (2.3 – 5.6 s, all different lengths).
"""
import numpy as np
import pytest

from voca_addon.core import batch, engine
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import audio, deepspeech, deepspeech_batch, features

VERTEX_TOL = 1e-6          # metres, batch vs one clip, end to end
LOGITS_REL_TOL = 1e-5      # max |Δ| / max |one-clip logits|


def vocaset_clips(shared_data):
    return sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))


def clip_inputs(paths):
    return [features.deepspeech_input(audio.prepare_for_deepspeech(audio.load_audio(p))) for p in paths]


@pytest.fixture(scope="module")
def ds_small(ds_small_pb, model_cache):
    return modelfiles.load_deepspeech(ds_small_pb, model_cache)


@pytest.fixture(scope="module")
def voca_model(voca_ckpt, model_cache):
    return modelfiles.load_voca(voca_ckpt, model_cache)


@pytest.mark.parametrize("which", ["ds_small_pb", "ds_saturating_pb"])
def test_batch_recurrence_logits_equal_one_clip_runs(which, request, shared_data, model_cache):
    """All 16 clips in one batch: each clip's logits are those of its own run (saturating gates too)."""
    model = modelfiles.load_deepspeech(request.getfixturevalue(which), model_cache)
    inputs = clip_inputs(vocaset_clips(shared_data))
    lengths = [len(x) for x in inputs]
    assert len(inputs) == 16 and len(set(lengths)) >= 12, lengths      # really different lengths
    together = deepspeech_batch.logits_batch(model, inputs)
    for x, ours in zip(inputs, together):
        alone = deepspeech.logits(model, x)
        assert ours.shape == alone.shape == (len(x), 29)
        err = float(np.abs(ours - alone).max() / np.abs(alone).max())
        assert err <= LOGITS_REL_TOL, (len(x), err)


def test_batch_recurrence_few_clips_bit_identical(shared_data, ds_small):
    """Below GEMM_MIN_CLIPS running clips a step is each clip's own product: the results are bit-identical."""
    inputs = clip_inputs(vocaset_clips(shared_data)[:deepspeech_batch.GEMM_MIN_CLIPS - 1])
    for x, ours in zip(inputs, deepspeech_batch.logits_batch(ds_small, inputs)):
        np.testing.assert_array_equal(ours, deepspeech.logits(ds_small, x))


def test_batch_recurrence_steps_once_for_the_longest_clip(shared_data, ds_small):
    """The recurrence takes max(T_b) steps per direction for the group, not Σ T_b: one weight read serves all."""
    inputs = clip_inputs(vocaset_clips(shared_data)[:5])
    calls = []
    deepspeech_batch.logits_batch(ds_small, inputs, progress=calls.append)
    t_max = max(len(x) for x in inputs)
    assert len(calls) == 2 * t_max < sum(len(x) for x in inputs)
    assert calls[-1] == pytest.approx(1.0) and np.all(np.diff(calls) > 0)


def test_batch_recurrence_refuses_bad_inputs(ds_small):
    with pytest.raises(deepspeech.InputError, match="at least one clip"):
        deepspeech_batch.logits_batch(ds_small, [])
    with pytest.raises(deepspeech.InputError, match="clip 1 must be"):
        deepspeech_batch.logits_batch(ds_small, [np.zeros((3, 494), np.float32), np.zeros((3, 26))])


def test_batch_pipeline_vertices_equal_one_clip_runs(shared_data, ds_small, voca_model, flame_template):
    """End to end (audio → vertices) on 16 real clips of different lengths and several styles: ≤ 1e-6 m."""
    paths = vocaset_clips(shared_data)
    styles = [1, 3, 8, {1: 0.5, 4: 0.5}]
    requests = [batch.ClipRequest(p.stem, str(p), styles[k % 4]) for k, p in enumerate(paths)]
    outcomes = batch.animate_group(requests, ds_small, voca_model, flame_template.vertices)
    worst = 0.0
    for req, out in zip(requests, outcomes):
        assert out.ok, out.error
        alone = engine.run(req.audio_path, ds_small, voca_model, flame_template.vertices, req.condition)
        assert out.animation.num_frames == alone.num_frames
        worst = max(worst, float(np.abs(out.animation.vertices() - alone.vertices()).max()))
    print(f"batch of {len(paths)} vs one-clip runs: max |Δvertex| = {worst:.3g} m")
    assert worst <= VERTEX_TOL


def test_batch_pipeline_failing_clip_does_not_stop_the_others(tmp_path, shared_data, ds_small, voca_model,
                                                             flame_template):
    paths = vocaset_clips(shared_data)[:3]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    requests = [batch.ClipRequest("a", str(paths[0])), batch.ClipRequest("bad", str(corrupt)),
                batch.ClipRequest("b", str(paths[1])), batch.ClipRequest("style", str(paths[2]), 99)]
    outcomes = batch.animate_group(requests, ds_small, voca_model, flame_template.vertices)
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert "corrupt.wav" in outcomes[1].error
    assert "condition 99 is out of range" in outcomes[3].error
    alone = engine.run(str(paths[1]), ds_small, voca_model, flame_template.vertices)
    assert np.abs(outcomes[2].animation.vertices() - alone.vertices()).max() <= VERTEX_TOL


def test_batch_groups_split_in_order():
    assert batch.groups(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(batch.InputError, match="at least 1"):
        batch.groups([1], 0)


def test_batch_recurrence_cancel_from_progress_stops_both_directions(shared_data, ds_small):
    """The directions run in two threads, each with a one-thread BLAS: raising from ``progress`` ends the call
    with that exception, no more steps are reported after it, and numpy's BLAS threads are restored."""
    from threadpoolctl import threadpool_limits
    inputs = clip_inputs(vocaset_clips(shared_data)[:6])
    calls, during = [], set()

    def stop_at_a_third(fraction):
        calls.append(fraction)
        during.update(blas_threads())
        if fraction > 1 / 3:
            raise KeyboardInterrupt("cancelled")
    with threadpool_limits(2, user_api="blas"):          # so that "1 during" is the batch's doing
        assert set(blas_threads()) == {2}
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            deepspeech_batch.logits_batch(ds_small, inputs, progress=stop_at_a_third)
        assert calls[-1] > 1 / 3 and all(f <= 1 / 3 for f in calls[:-1])
        assert during == {1} and set(blas_threads()) == {2}


def blas_threads():
    """numpy's (and any other loaded) BLAS libraries' thread counts."""
    from threadpoolctl import threadpool_info
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_batch_recurrence_concurrent_calls_restore_the_blas_threads(shared_data, ds_small):
    """Two calls at once (a Dask worker with several threads): B starts while A's recurrence holds the
    process-wide one-thread limit and ends after A. Both give their one-clip results, and the BLAS count
    afterwards is the one before (B must not save A's "1" as the original and restore it last)."""
    import threading
    from threadpoolctl import threadpool_limits
    paths = vocaset_clips(shared_data)
    inputs = {"a": clip_inputs(paths[:3]), "b": clip_inputs(paths[3:5])}
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    results, errors, during_a = {}, [], set()

    def progress_a(fraction):
        if not a_in.is_set():
            during_a.update(blas_threads())
            a_in.set()
            assert b_in.wait(60), "B never started its recurrence"

    def progress_b(fraction):
        b_in.set()
        if fraction >= 1:                                    # B's last step waits until A has returned
            assert a_done.wait(60), "A never ended"

    def run(name, progress, done=None):
        try:
            results[name] = deepspeech_batch.logits_batch(ds_small, inputs[name], progress=progress)
        except BaseException as exc:                         # noqa: BLE001 — reported below
            errors.append(exc)
            a_in.set(), b_in.set()
        finally:
            if done is not None:
                done.set()
    with threadpool_limits(2, user_api="blas"):
        assert set(blas_threads()) == {2}
        thread_a = threading.Thread(target=run, args=("a", progress_a, a_done))
        thread_a.start()
        assert a_in.wait(120)
        thread_b = threading.Thread(target=run, args=("b", progress_b))
        thread_b.start()
        thread_a.join(120), thread_b.join(120)
        assert not errors, errors
        assert during_a == {1}                               # A ran its directions under the limit
        assert set(blas_threads()) == {2}
        for name in ("a", "b"):
            for x, ours in zip(inputs[name], results[name]):
                alone = deepspeech.logits(ds_small, x)
                err = float(np.abs(ours - alone).max() / np.abs(alone).max())
                assert err <= LOGITS_REL_TOL, (name, len(x), err)
                print(f"{name}: {len(x)} steps, relative error {err:.3g}")
