"""safepickle: real FLAME pickles load, code-running pickles are refused, chumpy / scipy become stand-ins."""
import builtins
import codecs
import collections
import functools
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest

from voca_addon.core.errors import ModelFileError
from voca_addon.core.formats.safepickle import ChumpyStandIn, SparseStandIn, safe_load, to_array, to_plain

FLAME_MASK_REGIONS = 14
FLAME_VERTICES = 5023


def _dump(path, obj, protocol):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


# ---------------------------------------------------------------------------- real data

def test_safe_load_reads_real_flame_masks(shared_data):
    path = shared_data / "flame" / "FLAME_masks.pkl"
    masks = safe_load(path)
    with open(path, "rb") as handle:                       # the trusted reference: stdlib pickle
        reference = pickle.load(handle, encoding="latin1")
    assert len(masks) == FLAME_MASK_REGIONS
    assert {"lips", "face", "eye_region", "forehead", "nose", "scalp", "neck"} <= set(masks)
    assert set(masks) == set(reference)
    for name, indices in masks.items():
        assert isinstance(indices, np.ndarray) and indices.ndim == 1
        assert np.issubdtype(indices.dtype, np.integer)
        assert 0 <= indices.min() and indices.max() < FLAME_VERTICES
        np.testing.assert_array_equal(indices, reference[name])


# ---------------------------------------------------------------------------- refusals

class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_load_refuses_os_system_and_runs_nothing(tmp_path, protocol):
    target = tmp_path / "pwned.txt"
    path = _dump(tmp_path / "evil.pkl",
                 {"weights": np.ones(3), "payload": _Evil(os.system, f"echo pwned > {target}")}, protocol)
    with pytest.raises(ModelFileError) as info:
        safe_load(path)
    message = str(info.value)
    assert f"{os.system.__module__}.system" in message         # posix.system on Linux
    assert "could run code" in message and "only plain arrays and containers" in message
    assert not target.exists()


@pytest.mark.parametrize("payload, qualname", [
    (_Evil(builtins.eval, "1 + 1"), "builtins.eval"),
    (_Evil(subprocess.check_call, ["true"]), "subprocess.check_call"),
    (functools.partial(print, "hi"), "functools.partial"),
    (_Evil(getattr, "text", "upper"), "builtins.getattr"),
    (_Evil(builtins.__import__, "os"), "builtins.__import__"),
    (_Evil(codecs.encode, "payload", "rot13"), "_codecs.encode"),
])
def test_safe_load_refuses_other_callables(tmp_path, payload, qualname):
    path = _dump(tmp_path / "evil.pkl", [np.zeros(2), payload], 2)
    with pytest.raises(ModelFileError, match="could run code") as info:
        safe_load(path)
    assert qualname in str(info.value)


def test_safe_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelFileError, match="was not found"):
        safe_load(tmp_path / "missing.pkl")
    good = pickle.dumps({"a": np.arange(100.0)}, protocol=2)
    (tmp_path / "truncated.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError, match="not a readable pickle"):
        safe_load(tmp_path / "truncated.pkl")
    (tmp_path / "text.pkl").write_text("this is not a pickle")
    with pytest.raises(ModelFileError, match="not a readable pickle"):
        safe_load(tmp_path / "text.pkl")


# ---------------------------------------------------------------------------- accepted data

@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_load_reads_voca_training_pickle_layout(tmp_path, protocol):
    rng = np.random.default_rng(0)
    data = {subject: {f"sentence{k:02d}": {"audio": rng.integers(-2**15, 2**15, 2200 * k, dtype=np.int16),
                                           "sample_rate": 22000}
                      for k in (1, 2)}
            for subject in ("FaceTalk_170725_00137_TA", "FaceTalk_170728_03272_TA")}
    data["FaceTalk_170725_00137_TA"]["sentence01"]["sample_rate"] = np.int64(22000)   # a numpy scalar
    loaded = safe_load(_dump(tmp_path / "raw_audio_fitted.pkl", data, protocol))
    assert loaded.keys() == data.keys()
    for subject, sentences in data.items():
        for sentence, entry in sentences.items():
            np.testing.assert_array_equal(loaded[subject][sentence]["audio"], entry["audio"])
            assert loaded[subject][sentence]["audio"].dtype == np.int16
            assert loaded[subject][sentence]["sample_rate"] == 22000


def test_safe_load_reads_containers_and_numpy_values(tmp_path):
    data = collections.OrderedDict(a=np.float32(1.5), s={1, 2}, f=frozenset("ab"), b=b"\x00\xff", z=b"",
                                   c=3 + 4j, t=(np.arange(6).reshape(2, 3).T, [np.dtype("<f4")]),
                                   fortran=np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        loaded = safe_load(_dump(tmp_path / f"p{protocol}.pkl", data, protocol))
        assert list(loaded) == list(data) and isinstance(loaded, collections.OrderedDict)
        assert loaded["a"] == np.float32(1.5) and loaded["a"].dtype == np.float32
        assert loaded["s"] == {1, 2} and loaded["f"] == frozenset("ab") and loaded["c"] == 3 + 4j
        assert loaded["b"] == b"\x00\xff" and loaded["z"] == b""
        np.testing.assert_array_equal(loaded["t"][0], data["t"][0])
        np.testing.assert_array_equal(loaded["fortran"], data["fortran"])
        assert loaded["t"][1][0] == np.dtype("<f4")


def test_safe_load_turns_scipy_sparse_into_stand_ins(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((24, 40)) * (rng.random((24, 40)) < 0.2)
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        data = {"J_regressor": sparse.csc_matrix(dense), "rows": sparse.csr_matrix(dense)}
        loaded = safe_load(_dump(tmp_path / "sparse.pkl", data, protocol))
        for key in data:
            assert isinstance(loaded[key], SparseStandIn) and loaded[key].shape == dense.shape
            np.testing.assert_array_equal(to_array(loaded[key]), data[key].toarray())


# ---------------------------------------------------------------------------- chumpy stand-ins

def _fake_chumpy(monkeypatch):
    """Modules chumpy.ch / chumpy.reordering whose classes pickle like chumpy's (state = __dict__ copy)."""
    ch_module = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")
    ch_ops = types.ModuleType("chumpy.ch_ops")

    class Ch:
        def __init__(self, **terms):
            self.__dict__.update(terms, _dirty_vars=set(terms), _itr=None, _depends_on_deps={},
                                 _make_dense=False, _make_sparse=False, _parents={}, _cache={"r": None})

        def __getstate__(self):                 # chumpy drops its weak-reference caches
            state = dict(self.__dict__)
            del state["_parents"], state["_cache"]
            return state

    class Select(Ch):
        pass

    class add(Ch):
        pass

    for module, cls in ((ch_module, Ch), (reordering, Select), (ch_ops, add)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    package = types.ModuleType("chumpy")
    for name, module in (("chumpy", package), ("chumpy.ch", ch_module), ("chumpy.reordering", reordering),
                         ("chumpy.ch_ops", ch_ops)):
        monkeypatch.setitem(sys.modules, name, module)
    return Ch, Select, add


def _forget_chumpy(monkeypatch):
    for name in ("chumpy", "chumpy.ch", "chumpy.reordering", "chumpy.ch_ops"):
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError):
        __import__("chumpy")                    # the loader cannot fall back on a real chumpy


@pytest.mark.parametrize("protocol", [0, 2])
def test_safe_load_reads_chumpy_objects_without_chumpy(tmp_path, monkeypatch, protocol):
    Ch, Select, add = _fake_chumpy(monkeypatch)
    rng = np.random.default_rng(2)
    shapedirs, source = rng.standard_normal((30, 3, 8)), rng.standard_normal((30, 3, 20))
    idxs = rng.permutation(source.size)[:30 * 3 * 4]
    model = {"shapedirs": Ch(x=shapedirs),
             "select": Select(a=Ch(x=source), idxs=idxs, preferred_shape=(30, 3, 4)),
             "sum": add(a=Ch(x=shapedirs), b=Ch(x=shapedirs)), "f": np.arange(9).reshape(3, 3)}
    path = _dump(tmp_path / "model.pkl", model, protocol)
    _forget_chumpy(monkeypatch)

    loaded = safe_load(path)
    assert isinstance(loaded["shapedirs"], ChumpyStandIn)
    assert loaded["shapedirs"].kind == "chumpy.ch.Ch" and "x" in loaded["shapedirs"].state
    np.testing.assert_array_equal(to_array(loaded["shapedirs"]), shapedirs)
    np.testing.assert_array_equal(to_array(loaded["select"]), source.ravel()[idxs].reshape(30, 3, 4))
    with pytest.raises(ModelFileError, match="chumpy.ch_ops.add"):
        to_array(loaded["sum"])
    plain = to_plain({k: v for k, v in loaded.items() if k != "sum"})
    assert all(isinstance(v, np.ndarray) for v in plain.values())
    np.testing.assert_array_equal(plain["f"], model["f"])
