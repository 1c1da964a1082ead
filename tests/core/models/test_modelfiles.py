"""Finding, validating and caching the user's model files."""
import os

import numpy as np
import pytest

from voca_addon.core.models import modelfiles, tfbundle
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
    assert len(folders) == 1 and folders[0].startswith(f"deepspeech-v1-{pb.stat().st_size}-")
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
