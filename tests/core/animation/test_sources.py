"""core.animation.sources: a user's .npz / .npy read (a damaged file is a user error naming it) and checked
against its template (shape, numbers, size → the likely units); one fps range (issue 19, rows 5, 7, 8)."""
import zipfile

import numpy as np
import pytest

from voca_addon.cli.batch import worker as batch_worker
from voca_addon.cli import common as cli, sequences as sequence_commands
from voca_addon.core.animation import npzextras, sequences, sources
from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.flame import meshio


@pytest.fixture(scope="module")
def frames(shared_data):
    return np.load(shared_data / "voca_official" / "output_test_sentence_cond3.npz")["vertices"]


@pytest.fixture(scope="module")
def template(shared_data):
    return meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")


def _truncated(src, dst, size=100_000):
    dst.write_bytes(src.read_bytes()[:size])          # as `head -c 100000 x.npz > t.npz`
    return dst


def _damaged_member(tmp_path, frames):
    """A .npz whose directory is intact but whose compressed 'vertices' member has a cut-out middle."""
    path = tmp_path / "damaged.npz"
    np.savez_compressed(path, vertices=frames[:20], fps=60.0)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("vertices.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 2000
    data[start:start + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
    return path


def test_sources_every_npz_reader_names_a_truncated_file(shared_data, tmp_path, frames):
    cut = _truncated(shared_data / "voca_official" / "output_test_sentence_cond3.npz", tmp_path / "t.npz")
    readers = (sequences.read_sequence, npzextras.load_animation, npzextras.is_animation_file,
               npzextras.read_phones, sequence_commands._sequence_fps, batch_worker.read_speech_animation,
               batch_worker.read_key_weights)
    for read in readers:
        with pytest.raises(InputError, match=r"t\.npz' is not a complete \.npz \(truncated or damaged\)"):
            read(str(cut))
    damaged = _damaged_member(tmp_path, frames)
    with pytest.raises(InputError, match=r"damaged\.npz' is not a complete \.npz"):
        sequences.read_sequence(str(damaged))


def test_sources_a_truncated_npy_and_a_pickle_are_user_errors(tmp_path, frames):
    whole = tmp_path / "f.npy"
    np.save(whole, frames[:10])
    cut = _truncated(whole, tmp_path / "t.npy", whole.stat().st_size // 2)
    with pytest.raises(InputError, match=r"t\.npy' is not a complete \.npy"):
        sequences.read_sequence(str(cut))
    pickled = tmp_path / "p.npz"
    np.savez(pickled, vertices=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickled data"):
        sequences.read_sequence(str(pickled))


@pytest.mark.parametrize("factor, ratio, words", [
    (1000.0, "1000×", "millimetres with a template in metres: divide it by 1000"),
    (100.0, "100×", "centimetres with a template in metres"),
    (39.37, "39×", "inches with a template in metres"),
    (0.001, "0.001×", "metres with a template in millimetres: multiply it by 1000"),
    (7.0, "7×", "its unit differs from the template's")])
def test_sources_a_source_of_another_size_is_refused_with_the_ratio_and_unit(frames, template, factor, ratio, words):
    with pytest.raises(InputError) as e:
        sources.check_frames(frames[:30] * factor, template.vertices, "clip.npz", "flame.ply")
    assert f"'clip.npz' is about {ratio} the template's size" in str(e.value) and words in str(e.value)


def test_sources_accepts_the_official_frames_and_sizes_within_five_times(frames, template):
    for factor in (1.0, 4.9, 1 / 4.9):          # the official frames' own spread is the template's within 1 %
        sources.check_frames(frames * factor, template.vertices, "clip.npz")
    assert abs(sources.size_of(frames) / sources.size_of(template.vertices) - 1) < 0.01


def test_sources_refuses_shape_count_and_non_finite_frames(frames, template):
    with pytest.raises(InputError, match=r"shape \(30, 15069\)"):
        sources.check_frames(frames[:30].reshape(30, -1), template.vertices, "c.npz")
    with pytest.raises(InputError, match=r"shape \(0, 5023, 3\)"):
        sources.check_frames(frames[:0], template.vertices, "c.npz")
    with pytest.raises(MeshError, match="have 100 vertices but the template 'f.ply' has 5023"):
        sources.check_frames(frames[:3, :100], template.vertices, "c.npz", "f.ply")
    bad = frames[:3].copy()
    bad[1, 7, 2] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        sources.check_frames(bad, template.vertices, "c.npz")


def test_sources_import_sequence_refuses_millimetre_frames(tmp_path, frames, shared_data):
    mm = tmp_path / "mm.npz"
    np.savez(mm, vertices=frames[:20] * 1000.0, fps=60.0)
    with pytest.raises(InputError, match="about 1000× the template's size.*millimetres"):
        sequences.import_sequence(mm, shared_data / "flame" / "FLAME_sample.ply")


def test_sources_one_fps_range_for_flags_and_stored_rates(tmp_path, frames):
    assert cli.FPS_MAX == sources.FPS_MAX
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1000.5, 100000.0):
        with pytest.raises(InputError, match="--fps must be a frame rate above 0 and at most 1000 frames per"):
            cli.check_fps(bad)
    cli.check_fps(1000.0)
    high = tmp_path / "high.npz"
    np.savez(high, vertices=frames[:3], fps=100000.0)
    for read in (sequences.read_sequence, sequence_commands._sequence_fps):
        with pytest.raises(InputError, match=r"the fps stored in '.*high\.npz' must be a frame rate above 0 "
                                             r"and at most 1000"):
            read(str(high))


def _corrupt_deflate(path, member):
    """Make ``member``'s deflate stream start with the reserved block type 3 (BFINAL 1, BTYPE 11 → byte 0x07):
    zlib refuses it ("invalid block type") whatever the data."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    data = bytearray(path.read_bytes())
    at = info.header_offset
    name_length, extra_length = np.frombuffer(bytes(data[at + 26:at + 30]), "<u2")      # the local header's
    data[at + 30 + int(name_length) + int(extra_length)] = 0x07
    path.write_bytes(bytes(data))
    return path


def test_sources_blink_and_emotion_readers_name_a_member_zlib_cannot_inflate(tmp_path, frames, template):
    from voca_addon.core.living import blink
    from voca_addon.core.emotion import emotions
    seq, deltas = tmp_path / "seq.npz", tmp_path / "blink.npz"
    np.savez_compressed(seq, vertices=frames[:20], fps=60.0)
    np.savez_compressed(deltas, deltas=frames[100] - template.vertices)
    _corrupt_deflate(seq, "vertices.npy"), _corrupt_deflate(deltas, "deltas.npy")
    with pytest.raises(InputError, match=r"seq\.npz' is not a complete \.npz.*invalid block type"):
        sequences.read_sequence(str(seq))
    with pytest.raises(InputError, match=r"cannot read blink file '.*blink\.npz'"):
        blink.load_blink_shape([str(deltas)], template.vertices)
    with pytest.raises(InputError, match=r"cannot read emotion file '.*blink\.npz'"):
        emotions.from_delta_file(str(deltas))
