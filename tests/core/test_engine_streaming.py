"""The engine in blocks equals the engine on whole arrays; its files are written block by block."""
import numpy as np
import pytest

from tests.core.test_parity import relative_error
from voca_addon.core import engine
from voca_addon.core.errors import InputError
from voca_addon.core.models import modelfiles
from voca_addon.core.speech import audio


@pytest.fixture(scope="module")
def long_clip(shared_data):
    """36 s of real VOCASET speech at its own rate (22 kHz), as an in-memory Audio."""
    clips = sorted((shared_data / "audio" / "vocaset").glob("*/sentence0*.wav"))
    parts = [audio.load_audio(c) for c in clips[:10]]
    return audio.Audio(np.concatenate([p.samples if p.samples.ndim == 1 else p.samples[:, 0] for p in parts]),
                       parts[0].rate)


@pytest.fixture(scope="module")
def models(ds_small_pb, voca_ckpt, model_cache, flame_template):
    return (modelfiles.load_deepspeech(ds_small_pb, model_cache), modelfiles.load_voca(voca_ckpt, model_cache),
            flame_template.vertices)


def test_engine_speech_features_in_blocks_equal_one_block(long_clip, models):
    ds, _, _ = models
    stages = []
    blocks = engine.speech_features(long_clip, ds, 60.0, lambda f, s: stages.append((f, s)), chunk=200)
    whole = engine.speech_features(long_clip, ds, 60.0, chunk=10 ** 6)
    assert blocks.logits.shape[0] > 5 * 200                                    # crosses several blocks
    assert relative_error(blocks.logits, whole.logits) <= 1e-6
    assert relative_error(blocks.frames, whole.frames) <= 1e-6
    names = [s for _, s in stages]
    assert names[0] == engine.STAGE_AUDIO and engine.STAGE_MFCC in names and names[-1] == engine.STAGE_DEEPSPEECH
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_engine_animate_features_in_blocks_equals_whole_windows(long_clip, models):
    ds, vm, template = models
    feats = engine.speech_features(long_clip, ds, 60.0)
    blocks = engine.animate_features(feats, vm, template, condition={1: 0.5, 4: 0.5}, chunk=100)
    whole = engine.animate_windows(feats.windows, vm, template, condition={1: 0.5, 4: 0.5}, fps=60.0)
    assert blocks.num_frames == feats.num_frames > 100 * 5
    assert relative_error(blocks.weights, whole.weights) <= 1e-6


def test_engine_save_animation_npz_writes_vertices_in_blocks(long_clip, models, tmp_path):
    ds, vm, template = models
    anim = engine.animate_features(engine.speech_features(long_clip, ds, 60.0), vm, template)
    out = tmp_path / "anim.out"                                           # exactly this name, no ".npz" added
    written = []
    engine.save_animation_npz(anim, out, chunk=97, progress=lambda f, s: written.append(f))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.out"]
    with np.load(out) as z:
        # equal to the float32 rounding of the matrix product's blocking (measured 1.5e-8 m)
        np.testing.assert_allclose(z["vertices"], anim.vertices(), rtol=0, atol=1e-7)
        np.testing.assert_array_equal(z["weights"], anim.weights)
        assert float(z["fps"]) == 60.0 and list(z["names"]) == list(anim.names)
        assert z["basis"].shape == (50, 5023, 3)
    assert written[-1] == 1.0 and len(written) == -(-anim.num_frames // 97) + 1          # per block, then done
    compact = tmp_path / "compact.npz"
    engine.save_animation_npz(anim, compact, with_vertices=False)
    with np.load(compact) as z:
        assert "vertices" not in z.files and z["weights"].shape == anim.weights.shape


def test_engine_features_file_round_trip_in_blocks(long_clip, models, tmp_path):
    ds, _, _ = models
    feats = engine.speech_features(long_clip, ds, 60.0)
    path = tmp_path / "f.npz"
    feats.save_npz(path, chunk=123)
    with np.load(path) as z:                                              # the format 'features' always wrote
        np.testing.assert_array_equal(z["windows"], feats.windows)
        np.testing.assert_array_equal(z["logits"], feats.logits)
    back = engine.SpeechFeatures.load_npz(path, chunk=50)
    np.testing.assert_array_equal(back.frames, feats.frames)
    assert back.fps == 60.0
    np.savez(tmp_path / "old.npz", logits=feats.logits, windows=feats.windows, fps=np.float64(60))  # np.savez's own
    np.testing.assert_array_equal(engine.SpeechFeatures.load_npz(tmp_path / "old.npz").frames, feats.frames)


def test_engine_features_file_refused_when_not_features(tmp_path):
    np.savez(tmp_path / "x.npz", vertices=np.zeros((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="not a features file"):
        engine.SpeechFeatures.load_npz(tmp_path / "x.npz")


def test_engine_npz_destination_kept_when_writing_fails(long_clip, models, tmp_path):
    ds, vm, template = models
    anim = engine.animate_features(engine.speech_features(long_clip, ds, 60.0), vm, template)
    out = tmp_path / "keep.npz"
    out.write_bytes(b"the user's earlier result")

    def stop(fraction, stage):
        if fraction > 0.3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        engine.save_animation_npz(anim, out, chunk=64, progress=stop)
    assert out.read_bytes() == b"the user's earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]      # no partial file left
