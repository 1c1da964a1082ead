"""Finding, validating and caching the user's model files."""
import os

import numpy as np
import pytest

from voca_addon.core.models import modelfiles
from voca_addon.core.formats import tfbundle
from voca_addon.core.errors import ModelFileError


def test_modelfiles_resolve_voca_from_prefix_file_or_folder(voca_ckpt):
    folder = voca_ckpt.parent
    for given in (voca_ckpt, folder, str(voca_ckpt) + ".index", str(voca_ckpt) + ".data-00000-of-00001",
                  str(voca_ckpt) + ".meta"):
        assert modelfiles.resolve_voca(given) == voca_ckpt


def test_modelfiles_default_folder_from_environment(tmp_path, monkeypatch, voca_ckpt):
    monkeypatch.setenv("VOCA_MODEL_DIR", str(voca_ckpt.parent))
    assert modelfiles.resolve_voca() == voca_ckpt
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelFileError, match="VOCA_MODEL_DIR"):
        modelfiles.resolve_deepspeech()
    monkeypatch.setenv("VOCA_MODEL_DIR", str(tmp_path / "not-made-yet"))   # a folder that does not exist
    with pytest.raises(ModelFileError, match="not-made-yet/gstep_52280.model.index"):
        modelfiles.resolve_voca()


def test_modelfiles_cache_is_keyed_by_content_and_memory_mapped(ds_small_pb, tmp_path):
    pb = tmp_path / "output_graph.pb"
    pb.write_bytes(ds_small_pb.read_bytes())
    cache = tmp_path / "cache"
    first = modelfiles.load_deepspeech(pb, cache)
    folders = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert len(folders) == 1 and folders[0].startswith(f"deepspeech-v{modelfiles.CACHE_VERSION}-{pb.stat().st_size}-")
    assert folders[0].endswith(modelfiles.files_sha256([pb])[:16])
    again = modelfiles.load_deepspeech(pb, cache)
    assert isinstance(again.params["h1"].base, np.memmap) or isinstance(again.params["h1"], np.memmap)
    for name, arr in first.params.items():
        np.testing.assert_array_equal(arr, again.params[name])
    # A changed stat (mtime) is hashed again; the same content maps to the same entry.
    os.utime(pb, ns=(1, 1))
    modelfiles.load_deepspeech(pb, cache)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1     # same content → same entry


def test_modelfiles_changed_checkpoint_is_not_served_from_cache(voca_ckpt, tmp_path):
    cache = tmp_path / "cache"
    tensors = tfbundle.read_checkpoint(voca_ckpt)
    a = modelfiles.load_voca(tfbundle.write_checkpoint(tmp_path / "m" / "gstep_52280.model", tensors), cache)
    tensors["VOCA/SpeechEncoder/fc2/biases"] = tensors["VOCA/SpeechEncoder/fc2/biases"] + 1
    b = modelfiles.load_voca(tfbundle.write_checkpoint(tmp_path / "m" / "gstep_52280.model", tensors), cache)
    diff = b.params["VOCA/SpeechEncoder/fc2/biases"] - a.params["VOCA/SpeechEncoder/fc2/biases"]
    np.testing.assert_allclose(diff, 1.0, rtol=0, atol=1e-6)


def test_modelfiles_damaged_cache_entry_is_rebuilt(ds_small_pb, tmp_path):
    cache = tmp_path / "cache"
    h1 = np.array(modelfiles.load_deepspeech(ds_small_pb, cache).params["h1"])
    entry = next(p for p in cache.iterdir() if p.is_dir())
    (entry / "000.npy").unlink()              # a new file: the old mapping stays valid
    (entry / "000.npy").write_bytes(b"garbage")
    again = modelfiles.load_deepspeech(ds_small_pb, cache)
    np.testing.assert_array_equal(again.params["h1"], h1)


def test_modelfiles_entry_completed_by_another_process_is_kept(ds_small_pb, tmp_path):
    """A second process that missed the index converts again, but must not replace the entry the first
    one wrote (and may be reading): a batch with two workers lost ``008.npy`` that way on CI."""
    cache = tmp_path / "cache"
    first = modelfiles.load_deepspeech(ds_small_pb, cache)
    entry = next(p for p in cache.iterdir() if p.is_dir())
    inodes = {p.name: p.stat().st_ino for p in entry.iterdir()}
    (cache / "deepspeech-index.json").unlink()         # as seen by a worker that read the index earlier
    again = modelfiles.load_deepspeech(ds_small_pb, cache)
    assert {p.name: p.stat().st_ino for p in entry.iterdir()} == inodes
    assert sorted(p.name for p in cache.iterdir()) == sorted(["deepspeech-index.json", entry.name])
    for name, arr in first.params.items():
        np.testing.assert_array_equal(arr, again.params[name])


def test_modelfiles_processes_filling_one_cache_at_once_all_load(ds_small_pb, tmp_path):
    import subprocess
    import sys
    code = ("import sys; from voca_addon.core.models import modelfiles\n"
            "for _ in range(3):\n"
            "    m = modelfiles.load_deepspeech(sys.argv[1], sys.argv[2])\n"
            "    assert all(a.size for a in m.params.values())\n")
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", code, str(ds_small_pb), str(cache)],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in errors), errors
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]    # no temporary index left


def test_modelfiles_unwritable_cache_still_loads(ds_small_pb, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    model = modelfiles.load_deepspeech(ds_small_pb, blocker / "cache")
    assert model.params["h1"].flags.aligned and model.params["h1"].flags.c_contiguous


def test_modelfiles_variant_dims_inferred_from_real_ravdess_index(shared_data):
    from voca_addon.core.face import voca
    entries = tfbundle.read_index(shared_data / "ravdess_variant" / "gstep_1901.model.index")
    dims = voca.infer_dims({n: e.shape for n, e in entries.items()})
    assert (dims.num_conditions, dims.size_factor, dims.code_dim) == (4, 4, 100)
    assert dims.decoder_scope == "VOCA/ExpressionLayer" and dims.num_vertices == 5023
    official = tfbundle.read_index(shared_data / "voca_official" / "gstep_52280.model.index")
    dims = voca.infer_dims({n: e.shape for n, e in official.items()})
    assert (dims.num_conditions, dims.size_factor, dims.code_dim) == (8, 1, 50)
    assert dims.decoder_scope == "VOCA/FlameExpressionLayer"


# --- integrity: checksums, finiteness, the DeepSpeech release MD5 -----------------------------------

def _copy_checkpoint(voca_ckpt, folder):
    folder.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / ("gstep_52280.model" + suffix)).write_bytes((voca_ckpt.parent / (voca_ckpt.name + suffix)).read_bytes())
    return folder / "gstep_52280.model"


@pytest.mark.parametrize("damage", ["zeros", "random"])
def test_modelfiles_damaged_data_of_right_size_is_refused(voca_ckpt, tmp_path, damage):
    prefix = _copy_checkpoint(voca_ckpt, tmp_path / "m")
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    size = data.stat().st_size
    data.write_bytes(bytes(size) if damage == "zeros" else np.random.default_rng(7).bytes(size))
    with pytest.raises(ModelFileError) as info:
        modelfiles.load_voca(prefix, tmp_path / "cache")
    message = str(info.value)
    assert "the file is damaged (checksum mismatch in tensor 'VOCA/" in message
    assert "download it again from https://voca.is.tue.mpg.de" in message and str(data) in message
    assert not any(p.is_dir() for p in (tmp_path / "cache").glob("voca-*"))      # nothing cached


def test_modelfiles_checksum_verified_on_first_read_then_cache_trusted(voca_ckpt, tmp_path):
    prefix = _copy_checkpoint(voca_ckpt, tmp_path / "m")
    cache = tmp_path / "cache"
    good = modelfiles.load_voca(prefix, cache)
    manifest = next(cache.glob("voca-v2-*/manifest.json"))
    digests = modelfiles.files_digests([prefix.with_name(prefix.name + s) for s in (".index", ".data-00000-of-00001")])
    assert digests["sha256"] in manifest.read_text() and digests["md5"] in manifest.read_text()
    again = modelfiles.load_voca(prefix, cache)       # served from the cache (memory-mapped)
    name = "VOCA/SpeechEncoder/fc2/biases"
    np.testing.assert_array_equal(good.params[name], again.params[name])


def test_modelfiles_non_finite_weights_refused_at_load(voca_ckpt, tmp_path):
    tensors = tfbundle.read_checkpoint(voca_ckpt)
    tensors["VOCA/SpeechEncoder/fc2/biases"] = tensors["VOCA/SpeechEncoder/fc2/biases"].copy()
    tensors["VOCA/SpeechEncoder/fc2/biases"][3] = np.nan      # a diverged training run: checksums are fine
    prefix = tfbundle.write_checkpoint(tmp_path / "m" / "gstep_52280.model", tensors)
    with pytest.raises(ModelFileError, match=r"non-finite weights \(NaN or infinity\) in tensor "
                                             r"'VOCA/SpeechEncoder/fc2/biases'"):
        modelfiles.load_voca(prefix, tmp_path / "cache")


def test_modelfiles_non_release_deepspeech_graph_warns_every_load(ds_small_pb, tmp_path):
    import hashlib
    assert hashlib.md5(ds_small_pb.read_bytes()).hexdigest() != modelfiles.DEEPSPEECH_RELEASE_MD5
    for _ in range(2):                                # first read, then from the cache
        with pytest.warns(modelfiles.NonReleaseGraphWarning) as record:
            modelfiles.load_deepspeech(ds_small_pb, tmp_path / "cache")
        (warning,) = record
        text = str(warning.message)
        assert "\n" not in text and str(ds_small_pb) in text and modelfiles.DEEPSPEECH_RELEASE_MD5 in text


def test_modelfiles_every_missing_file_named_in_one_message(tmp_path, voca_ckpt, ds_small_pb):
    with pytest.raises(ModelFileError) as info:
        modelfiles.check_model_files(tmp_path, tmp_path / "none.pb", tmp_path / "none.ply")   # empty folder
    message = str(info.value)
    assert message.startswith("3 model files are missing")
    for name in ("gstep_52280.model.index", "none.pb", "none.ply"):
        assert name in message
    with pytest.raises(ModelFileError, match=r"^DeepSpeech .* not found") as info:   # one missing: as before
        modelfiles.check_model_files(voca_ckpt, tmp_path / "none.pb", need_template=False)
    assert "template" not in str(info.value)
    assert modelfiles.check_model_files(voca_ckpt, ds_small_pb, tmp_path / "none.ply",
                                        need_template=False) == (voca_ckpt, ds_small_pb, None)
