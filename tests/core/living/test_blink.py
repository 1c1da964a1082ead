"""blink: Blink shapes from a FLAME model, eyelid delta files or a mesh; a blink track with human statistics
over a minute of real speech."""
import numpy as np
import pytest

from tests.core.flame.flame_format import reference_lbs
from voca_addon.core.errors import InputError, MeshError, ModelFileError
from voca_addon.core.living import blink, prosody
from voca_addon.core.flame.meshio import read_mesh, write_ply


@pytest.fixture(scope="module")
def template(shared_data):
    return read_mesh(shared_data / "flame" / "FLAME_sample.ply").vertices


def test_blink_from_flame_is_vocas_blink_expression(flame_format, template):
    path, arrays = flame_format
    shape = blink.load_blink_shape([path], template)
    # VOCA's edit_sequences.py: the FLAME model with expression ψ_blink in the zero pose, minus the head
    want = reference_lbs(arrays, np.zeros((5, 3)), expression=blink.VOCA_BLINK_EXPRESSION) - arrays["v_template"]
    assert shape.delta.dtype == np.float32 and shape.delta.shape == (5023, 3)
    np.testing.assert_allclose(shape.delta, want, atol=1e-7)
    assert blink.VOCA_BLINK_EXPRESSION.shape == (100,)


def test_blink_from_eyelid_files_sums_left_and_right(shared_data, template):
    left, right = shared_data / "flame" / "l_eyelid.npy", shared_data / "flame" / "r_eyelid.npy"
    shape = blink.load_blink_shape([left, right], template)
    np.testing.assert_allclose(shape.delta, np.load(left) + np.load(right), atol=1e-6)
    size = np.linalg.norm(shape.delta, axis=1)
    moved = size > 0.5 * size.max()                    # the upper lids travel furthest, downwards
    assert np.all(shape.delta[moved, 1] < 0) and 0.005 < size.max() < 0.015
    assert template[moved, 0].min() < 0 < template[moved, 0].max()    # both eyes


def test_blink_from_closed_eye_mesh(tmp_path, shared_data, template):
    delta = np.load(shared_data / "flame" / "l_eyelid.npy")
    path = tmp_path / "closed.ply"
    write_ply(path, template + delta)
    shape = blink.load_blink_shape([path], template)
    np.testing.assert_allclose(shape.delta, delta, atol=1e-6)


def test_blink_source_of_another_topology_is_refused(tmp_path, shared_data, template):
    arkit = sorted((shared_data / "arkit" / "ARKit_blendshapes").glob("*.obj"))[0]
    with pytest.raises(MeshError, match="1220 vertices but the head has 5023"):
        blink.load_blink_shape([arkit], template)
    np.save(tmp_path / "other.npy", np.zeros((1220, 3)))
    with pytest.raises(MeshError, match="another topology"):
        blink.load_blink_shape([tmp_path / "other.npy"], template)


def test_blink_deltas_larger_than_the_head_are_refused(tmp_path, shared_data, template):
    eyelid = np.load(shared_data / "flame" / "l_eyelid.npy")
    np.save(tmp_path / "millimetres.npy", eyelid * 1000)          # 9 m lids on a 0.3 m head: wrong units
    np.save(tmp_path / "huge.npy", np.full((5023, 3), 1e6))
    np.save(tmp_path / "nan.npy", np.full((5023, 3), np.nan))
    for name in ("millimetres.npy", "huge.npy"):
        with pytest.raises(MeshError, match="more than the whole head's size"):
            blink.load_blink_shape([tmp_path / name], template)
    write_ply(tmp_path / "far.ply", template + np.array([0.0, 5.0, 0.0]))
    with pytest.raises(MeshError, match="more than the whole head's size"):
        blink.load_blink_shape([tmp_path / "far.ply"], template)
    with pytest.raises(InputError, match="finite"):
        blink.load_blink_shape([tmp_path / "nan.npy"], template)


def test_blink_source_bad_files_are_refused(tmp_path, template):
    (tmp_path / "notes.txt").write_text("blink")
    np.save(tmp_path / "flat.npy", np.zeros(15069))
    (tmp_path / "fake.pkl").write_bytes(b"not a pickle")
    cases = [([], "no blink source"), ([tmp_path / "missing.npy"], "was not found"),
             ([tmp_path / "notes.txt"], "give one FLAME model"), ([tmp_path / "flat.npy"], r"\[V, 3\]")]
    for sources, message in cases:
        with pytest.raises(InputError, match=message):
            blink.load_blink_shape(sources, template)
    with pytest.raises(ModelFileError, match="not a readable pickle"):
        blink.load_blink_shape([tmp_path / "fake.pkl"], template)


def _minute_tracks(speech_minute, fps=30, seeds=range(10)):
    audio, _ = speech_minute
    pros = prosody.analyse(audio, fps)
    return pros, [blink.blink_track(pros.num_frames, fps, pros, seed=s) for s in seeds]


def test_blink_track_human_statistics_over_a_minute_of_speech(speech_minute):
    pros, tracks = _minute_tracks(speech_minute)
    rates = np.array([t.rate_per_minute() for t in tracks])
    durations = np.concatenate([t.durations_s for t in tracks])
    closing = np.concatenate([t.closing_s for t in tracks])
    opening = np.concatenate([t.opening_s for t in tracks])
    doubles = np.concatenate([t.double for t in tracks])
    frames = [np.round(t.peaks_s * t.fps).astype(int) for t in tracks]
    in_pause = np.concatenate([~pros.speaking[f] for f in frames])
    print(f"\n{pros.num_frames / pros.fps:.0f} s of speech ({1 - pros.speaking.mean():.0%} pauses), 10 seeds: "
          f"rate {rates.mean():.1f}/min (range {rates.min():.1f}–{rates.max():.1f}), duration "
          f"{durations.mean() * 1e3:.0f} ms ({durations.min() * 1e3:.0f}–{durations.max() * 1e3:.0f}), closing "
          f"{closing.mean() * 1e3:.0f} ms, opening {opening.mean() * 1e3:.0f} ms, double {doubles.mean():.1%}, "
          f"in pauses {in_pause.mean():.0%}")
    assert 10 <= rates.mean() <= 20 and rates.min() >= 5 and rates.max() <= 30
    assert 0.2 <= durations.min() and durations.max() <= 0.45
    assert np.all(closing < opening) and 0.07 <= closing.mean() <= 0.11 and 0.15 <= opening.mean() <= 0.25
    assert 0.01 <= doubles.mean() <= 0.15
    assert in_pause.mean() > 1.5 * (1 - pros.speaking.mean())          # blinks favour pauses


def test_blink_track_weights_close_fully_on_a_frame_and_stay_in_range(speech_minute):
    for fps in (24, 30, 60):
        audio, _ = speech_minute
        pros = prosody.analyse(audio, fps)
        track = blink.blink_track(pros.num_frames, fps, pros, seed=3)
        assert track.weight.dtype == np.float32 and track.weight.shape == (pros.num_frames,)
        assert track.weight.min() == 0 and track.weight.max() <= 1
        peaks = np.round(track.peaks_s * fps).astype(int)
        np.testing.assert_array_equal(track.weight[peaks], 1.0)
        open_frames = (track.weight == 0).mean()
        assert open_frames > 0.85                                       # eyes are open most of the time


def test_blink_track_at_rest_rate_and_seed():
    fps, frames = 30, 30 * 600
    tracks = [blink.blink_track(frames, fps, None, seed=s) for s in range(3)]
    rates = [t.rate_per_minute() for t in tracks]
    assert all(15 <= r <= 20 for r in rates), rates
    np.testing.assert_array_equal(blink.blink_track(frames, fps, seed=1).weight, tracks[1].weight)
    assert not np.array_equal(tracks[0].weight, tracks[1].weight)


def test_blink_track_refuses_bad_parameters():
    for kwargs in ({"rate_rest": -1}, {"rate_speaking": 500}, {"double_probability": 2}, {"pause_boost": -1}):
        with pytest.raises(InputError, match="blinks:"):
            blink.blink_track(100, 30, **kwargs)
    with pytest.raises(InputError):
        blink.blink_track(0, 30)
