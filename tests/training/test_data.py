"""Training data: VOCA's folder format, splits and conditions, RAVDESS names, cached features, windows,
and every refused input (clear message, nothing written). No TensorFlow runs here."""
import pickle
import shutil

import numpy as np
import pytest

from tests.training.conftest import TRAIN_FRAMES, cut, write_voca_folder
from voca_addon.cli import common, main as cli
from voca_addon.core import engine
from voca_addon.core.models import modelfiles
from voca_addon.core.errors import ModelFileError, VocaError
from voca_training import batches, config, data
from voca_training.errors import DataError
from voca_training.train import train


@pytest.fixture(scope="module")
def tiny_cfg(tiny_config):
    return config.load_config(tiny_config)


def test_data_tiny_folder_opens_with_splits_and_conditions(tiny_data, tiny_cfg, clips):
    ds = data.open_dataset(tiny_data, tiny_cfg)
    assert ds.conditions == ("official_test_sentence", "official_test")
    assert [(s.subject, s.name, s.num_frames, s.condition) for s in ds.train] == [
        ("official_test_sentence", "sentence01", TRAIN_FRAMES, 0), ("official_test", "sentence01", TRAIN_FRAMES, 1)]
    assert [s.num_frames for s in ds.validation] == [306 - TRAIN_FRAMES, 287 - TRAIN_FRAMES]
    assert isinstance(ds.verts, np.memmap) and ds.num_vertices == 5023
    np.testing.assert_array_equal(ds.verts[ds.validation[1].rows], clips["official_test"].vertices[TRAIN_FRAMES:])


def test_data_frames_follow_frame_numbers_not_dict_order(tmp_path, clips, template, tiny_cfg):
    """voca#131: frames read in dict order made the face twitch; rows must follow the frame numbers."""
    entries = [(subject, "sentence01", cut(clip, 0, 50)) for subject, clip in clips.items()]
    root = write_voca_folder(tmp_path / "d", entries, {s: template for s in clips})
    index = pickle.loads((root / "subj_seq_to_idx.pkl").read_bytes())
    frames = index["official_test"]["sentence01"]
    index["official_test"]["sentence01"] = {f: frames[f] for f in sorted(frames, reverse=True)}
    (root / "subj_seq_to_idx.pkl").write_bytes(pickle.dumps(index, protocol=2))
    seq = data.open_dataset(root, _cfg(tiny_cfg, sequence_for_validation=()))
    np.testing.assert_array_equal(seq.train[1].rows, np.arange(50, 100))


def _cfg(cfg, **changes):
    import dataclasses
    return dataclasses.replace(cfg, **changes)


def test_data_ravdess_names_give_emotions():
    assert data.parse_ravdess_name("03-01-05-02-01-01-01.wav") == {
        "modality": 3, "channel": 1, "emotion": 5, "intensity": 2, "statement": 1, "repetition": 1, "actor": 1}
    assert [data.emotion_label(f"03-01-{e:02d}-01-01-01-12") for e in range(1, 9)] == list(data.RAVDESS_EMOTIONS)
    for bad in ("sentence01", "03-01-05-02-01-01.wav", "03-01-09-02-01-01-01.wav", "03-01-0x-02-01-01-01"):
        with pytest.raises(DataError, match="RAVDESS|emotion code"):
            data.emotion_label(bad)


def test_data_emotion_conditions_come_from_names(tmp_path, clips, template, tiny_cfg):
    clip = cut(clips["official_test_sentence"], 0, 60)
    names = ["03-01-05-02-01-01-01.wav", "03-01-03-02-01-01-01.wav", "03-01-05-02-02-01-01.wav"]
    root = write_voca_folder(tmp_path / "d", [("Actor_01", n, clip) for n in names], {"Actor_01": template})
    cfg = _cfg(tiny_cfg, condition_by="emotion", subject_for_training=("Actor_01",), sequence_for_training=("*",),
               subject_for_validation=())
    ds = data.open_dataset(root, cfg)
    assert ds.conditions == ("happy", "angry")                  # RAVDESS code order: 03 before 05
    assert {s.name: s.condition for s in ds.train} == {names[0]: 1, names[1]: 0, names[2]: 1}
    with pytest.raises(DataError, match="not a RAVDESS-style name"):
        bad = write_voca_folder(tmp_path / "e", [("Actor_01", "sentence01", clip)], {"Actor_01": template})
        data.open_dataset(bad, cfg)


def test_data_features_are_the_engines_cached_and_wav_folder_matches_pickle(
        tmp_path, tiny_data, tiny_cfg, ds_small_pb, monkeypatch):
    cache = tmp_path / "cache"
    ds = data.open_dataset(tiny_data, tiny_cfg)
    first = batches.compute_features(ds, ds_small_pb, cache)
    assert len(list((cache / batches.FEATURE_CACHE_DIR).glob("*.npy"))) == 4
    model = modelfiles.load_deepspeech(ds_small_pb, cache)
    seq = ds.validation[0]
    windows = engine.speech_features(seq.audio, model, data.FPS).windows
    sampler = batches.WindowSampler(ds, ds.validation, first, 1)
    np.testing.assert_array_equal(sampler.gather(np.arange(seq.num_frames)).windows, windows[:seq.num_frames])

    def no_model(*a, **k):
        raise AssertionError("features were recomputed although cached")
    monkeypatch.setattr(modelfiles, "load_deepspeech", no_model)
    again = batches.compute_features(ds, ds_small_pb, cache)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    wav_root = tmp_path / "wav"                                  # same data, audio as a WAV folder
    shutil.copytree(tiny_data, wav_root)
    (wav_root / data.RAW_AUDIO_FILE).unlink()
    raw = pickle.loads((tiny_data / data.RAW_AUDIO_FILE).read_bytes())
    from scipy.io import wavfile
    for subject, seqs in raw.items():
        (wav_root / "audio" / subject).mkdir(parents=True)
        for name, entry in seqs.items():
            wavfile.write(wav_root / "audio" / subject / f"{name}.wav", entry["sample_rate"], entry["audio"])
    from_wav = batches.compute_features(data.open_dataset(wav_root, tiny_cfg), ds_small_pb, cache)
    assert all(np.array_equal(first[k], from_wav[k]) for k in first)


def test_data_windows_are_consecutive_frames_and_targets_displacements(tiny_data, tiny_cfg, clips, template):
    ds = data.open_dataset(tiny_data, tiny_cfg)
    logits = {(s.subject, s.name): np.arange(s.num_frames, dtype=np.float32)[:, None].repeat(29, 1)
              for s in ds.train + ds.validation}
    sampler = batches.WindowSampler(ds, ds.train, logits, 3)
    batch = sampler.gather(np.array([0, 5, TRAIN_FRAMES + 7]))    # frame 0 and 5 of seq 0, frame 7 of seq 1
    centre = batch.windows[:, batches.HALF, 0]                  # row 8 of a window = its own frame
    np.testing.assert_array_equal(centre, [0, 0, 0, 3, 4, 5, 5, 6, 7])   # before frame 0: frame 0 again
    np.testing.assert_array_equal(batch.conditions, [0, 0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(batch.targets[5], clips["official_test_sentence"].vertices[5] - template)
    assert batch.windows.shape == (9, 16, 29) and batch.windows[0, :batches.HALF].max() == 0
    order = sampler.epoch_order(0, 3)
    assert np.array_equal(order, sampler.epoch_order(0, 3)) and not np.array_equal(order, sampler.epoch_order(0, 4))


def test_data_initial_basis_is_std_scaled_pca_or_the_given_file(tmp_path, tiny_data, tiny_cfg):
    ds = data.open_dataset(tiny_data, tiny_cfg)
    logits = {(s.subject, s.name): np.zeros((s.num_frames, 29), np.float32) for s in ds.train}
    sampler = batches.WindowSampler(ds, ds.train, logits, 2)
    basis = batches.initial_basis("", 50, 5023, sampler, 0)
    gram = basis.astype(np.float64) @ basis.T.astype(np.float64)
    norms = np.sqrt(np.diag(gram))
    assert np.all(np.diff(norms) <= 1e-9) and abs(gram - np.diag(np.diag(gram))).max() < 1e-5 * norms[0] ** 2
    disp = sampler.gather(np.arange(sampler.num_frames), 1).targets.reshape(sampler.num_frames, -1)
    assert abs(norms[0] - np.std(disp @ (basis[0] / norms[0]), ddof=1)) < 1e-3 * norms[0]
    given = np.random.default_rng(0).normal(size=(15069, 3)).astype(np.float32)
    np.save(tmp_path / "b.npy", given)
    out = batches.initial_basis(str(tmp_path / "b.npy"), 5, 5023, sampler, 0)
    np.testing.assert_array_equal(out[:3], given.T)
    assert not out[3:].any()
    assert not batches.initial_basis("", 5, 5023, sampler, 0, enabled=False).any()


# ------------------------------------------------------------------------------------- refusals
def _refused(tmp_path, root, cfg_path, ds_pb, match, error=VocaError):
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        train(root, ds_pb, out, config=cfg_path, steps=5, cache=tmp_path / "cache")
    assert not out.exists()                                      # nothing written


def _copy(tiny_data, tmp_path):
    return shutil.copytree(tiny_data, tmp_path / "data")


def test_data_missing_files_are_named(tmp_path, tiny_data, tiny_config, ds_small_pb):
    root = _copy(tiny_data, tmp_path)
    (root / "templates.pkl").unlink()
    (root / "raw_audio_fitted.pkl").unlink()
    _refused(tmp_path, root, tiny_config, ds_small_pb, "lacks templates.pkl, raw_audio_fitted.pkl")
    _refused(tmp_path, tmp_path / "nowhere", tiny_config, ds_small_pb, "does not exist")
    _refused(tmp_path, tiny_data, tiny_config, tmp_path / "output_graph.pb", "DeepSpeech")


def test_data_mismatched_frame_counts_are_refused(tmp_path, tiny_data, tiny_config, ds_small_pb):
    root = _copy(tiny_data, tmp_path)
    raw = pickle.loads((root / "raw_audio_fitted.pkl").read_bytes())
    entry = raw["official_test"]["sentence01"]
    entry["audio"] = entry["audio"][: len(entry["audio"]) // 2]  # half the audio for 240 vertex frames
    (root / "raw_audio_fitted.pkl").write_bytes(pickle.dumps(raw, protocol=2))
    _refused(tmp_path, root, tiny_config, ds_small_pb,
             r"official_test/sentence01: 240 vertex frames but its audio lasts 2.000 s = 120 frames")


def test_data_template_with_wrong_vertex_count_is_refused(tmp_path, tiny_data, tiny_config, ds_small_pb):
    root = _copy(tiny_data, tmp_path)
    templates = pickle.loads((root / "templates.pkl").read_bytes())
    templates["official_test"] = templates["official_test"][:5000]
    (root / "templates.pkl").write_bytes(pickle.dumps(templates, protocol=2))
    _refused(tmp_path, root, tiny_config, ds_small_pb, r"template of subject 'official_test'.*\[5000, 3\]", DataError)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_data_unsafe_pickle_is_refused_unexecuted(tmp_path, tiny_data, tiny_config, ds_small_pb, capsys):
    root = _copy(tiny_data, tmp_path)
    (root / "subj_seq_to_idx.pkl").write_bytes(pickle.dumps({"x": _Evil()}))
    _refused(tmp_path, root, tiny_config, ds_small_pb, "refusing to load .*builtins.print", ModelFileError)
    assert "must never run" not in capsys.readouterr().out


def test_data_overlapping_splits_and_unknown_subjects_are_refused(tmp_path, tiny_data, tiny_config, ds_small_pb):
    text = tiny_config.read_text()
    overlap = tmp_path / "overlap.ini"
    overlap.write_text(text.replace("sequence_for_validation = sentence02", "sequence_for_validation = sentence01"))
    _refused(tmp_path, tiny_data, overlap, ds_small_pb, "in both the training and the validation split")
    unknown = tmp_path / "unknown.ini"
    unknown.write_text(text.replace("subject_for_training = official_test_sentence", "subject_for_training = nobody"))
    _refused(tmp_path, tiny_data, unknown, ds_small_pb, "training subject\\(s\\) nobody have none")


def test_data_cli_prints_one_error_line(tmp_path, tiny_data, tiny_config, ds_small_pb, capsys):
    root = _copy(tiny_data, tmp_path)
    (root / "data_verts.npy").unlink()
    rc = cli.main(["train", "--config", str(tiny_config), "--data", str(root), "--deepspeech", str(ds_small_pb),
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == common.EXIT_USER_ERROR and err.count("\n") == 1 and err.startswith("error: ")
    assert "lacks data_verts.npy" in err and not (tmp_path / "out").exists()


def test_data_cli_without_tensorflow_says_so(tmp_path, tiny_data, ds_small_pb, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    rc = cli.main(["train", "--data", str(tiny_data), "--deepspeech", str(ds_small_pb), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == common.EXIT_USER_ERROR and err.count("\n") == 1 and "needs TensorFlow 2" in err
    monkeypatch.setitem(__import__("sys").modules, "voca_training", None)
    rc = cli.main(["train", "--data", str(tiny_data), "--deepspeech", str(ds_small_pb), "--out", str(tmp_path / "o")])
    assert rc == common.EXIT_USER_ERROR and "'voca_training' package" in capsys.readouterr().err
