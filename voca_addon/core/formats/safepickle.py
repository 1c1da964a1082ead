"""Load pickles that hold data only: FLAME assets and VOCA's training pickles.

``pickle.load`` runs whatever callable a file names, so a downloaded ``.pkl`` can run code. This module's
unpickler resolves a fixed allow-list of names and refuses every other one:

* plain containers and scalars (``set``, ``frozenset``, ``OrderedDict``, ``bytes``, ``complex``, ...);
* numpy arrays, dtypes and scalars, under numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``) spellings;
* **chumpy** objects (``chumpy.ch.Ch`` and its subclasses in ``chumpy.reordering``, ``chumpy.ch_ops``, ...),
  which FLAME model pickles contain, become an inert :class:`ChumpyStandIn` that keeps the pickled state
  dict; :func:`to_array` evaluates ``Ch`` (its ``x``) and the reorderings ``Select``, ``reshape`` and
  ``transpose`` (of their ``a``) without chumpy; any other chumpy expression is refused when evaluated;
* **scipy sparse** CSC / CSR matrices (FLAME's ``J_regressor``) become a :class:`SparseStandIn` holding
  ``data``, ``indices``, ``indptr`` and ``shape``; ``toarray()`` makes it dense without scipy.

Everything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ``functools.partial``, ...) raises
``ModelFileError`` naming the offending ``module.name``; nothing it names is imported or called.

Contract: stdlib + numpy; pure functions, any thread. Never imports chumpy or scipy.
"""
from __future__ import annotations

import _compat_pickle  # stdlib: Python 2 → 3 module names, as pickle itself uses
import codecs
import collections
import os
import pickle

import numpy as np

from ..errors import ModelFileError

try:                                    # numpy >= 1.26 has the numpy 2 layout too
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:                     # pragma: no cover - older numpy
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

DEFAULT_ENCODING = "latin1"             # reads Python 2 pickles (FLAME, VOCA) with their byte strings
SAFE_CODECS = ("latin1", "latin-1", "iso-8859-1", "iso8859-1")
CHUMPY_MODULES = ("chumpy", "chumpy.ch", "chumpy.ch_ops", "chumpy.reordering", "chumpy.linalg",
                  "chumpy.logic")
SPARSE_MODULES = ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse.csr", "scipy.sparse._csc",
                  "scipy.sparse._csr", "scipy.sparse.compressed", "scipy.sparse._compressed")
SPARSE_NAMES = {"csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr"}
SAFE_BUILTINS = {t.__name__: t for t in (set, frozenset, bytearray, bytes, complex, object, list, dict,
                                         tuple, int, float, bool, str, slice, range)}


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; :func:`safe_load` turns it into a ``ModelFileError``."""

    def __init__(self, qualname: str):
        super().__init__(qualname)
        self.qualname = qualname


class ChumpyStandIn:
    """An inert pickled chumpy object: its class name (``kind``) and pickled ``state`` dict."""

    kind = "chumpy.ch.Ch"

    def __new__(cls, *args, **kwargs):  # NEWOBJ passes the pickled constructor arguments; ignore them
        self = object.__new__(cls)
        self.state = {}
        return self

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:            # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.kind} has a state of type {type(state).__name__}")
        self.state = state

    def __repr__(self):
        return f"<{self.kind} stand-in, keys {sorted(map(str, self.state))}>"

    def toarray(self) -> np.ndarray:
        """The value the chumpy object stands for (float64 unless pickled otherwise).

        Raises
        ------
        ModelFileError
            For chumpy expressions other than ``Ch``, ``Select``, ``reshape`` and ``transpose``.
        """
        state, op = self.state, self.kind.rsplit(".", 1)[-1]
        if "x" in state:
            return np.asarray(to_array(state["x"]))
        try:
            if op == "Select":
                flat = to_array(state["a"]).ravel()[np.asarray(state["idxs"])]
                shape = state.get("preferred_shape")
                return flat if shape is None else flat.reshape(shape)
            if op == "reshape":
                return to_array(state["a"]).reshape(state["newshape"])
            if op == "transpose":
                return to_array(state["a"]).transpose(state.get("axes"))
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise ModelFileError(f"the chumpy object {self.kind} in this file is inconsistent ({exc}); "
                                 "the file is corrupt. Download it again.") from None
        raise ModelFileError(f"this file stores a chumpy expression ({self.kind}) that cannot be evaluated "
                             "without chumpy. Re-save the model with plain numpy arrays.")


class SparseStandIn:
    """An inert pickled scipy CSC / CSR matrix: ``data``, ``indices``, ``indptr``, ``shape``, ``format``."""

    format = "csc"

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.data = self.indices = self.indptr = None
        self.shape = (0, 0)
        return self

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a sparse matrix has a state of type {type(state).__name__}")
        try:
            self.data = np.asarray(state["data"])
            self.indices = np.asarray(state["indices"], dtype=np.int64)
            self.indptr = np.asarray(state["indptr"], dtype=np.int64)
            self.shape = tuple(int(n) for n in state.get("_shape", state.get("shape")))
        except (KeyError, TypeError, ValueError) as exc:
            raise pickle.UnpicklingError(f"a sparse matrix misses its arrays ({exc})") from None

    def __repr__(self):
        return f"<{self.format} sparse stand-in {self.shape}, {len(self.data)} stored values>"

    def toarray(self) -> np.ndarray:
        """Dense matrix of ``shape``, dtype of ``data`` (duplicate entries summed, as scipy does)."""
        major, minor = self.shape if self.format == "csr" else self.shape[::-1]
        count = len(self.data)
        if (len(self.indptr) != major + 1 or len(self.indices) != count or self.indptr[-1] != count
                or np.any(np.diff(self.indptr) < 0)
                or (count and (self.indices.min() < 0 or self.indices.max() >= minor))):
            raise ModelFileError(f"a {self.format} sparse matrix {self.shape} in this file is inconsistent; "
                                 "the file is corrupt. Download it again.")
        rows = np.repeat(np.arange(major), np.diff(self.indptr))                 # [nnz] major index
        dense = np.zeros((major, minor), dtype=self.data.dtype)
        np.add.at(dense, (rows, self.indices), self.data)
        return dense if self.format == "csr" else dense.T.copy()


_STAND_INS: dict = {}


def _stand_in(base: type, module: str, name: str, **attrs) -> type:
    """One stand-in class per pickled class name (cached), so ``kind`` / ``format`` are class attributes."""
    key = (module, name)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (base,), {"__module__": __name__, **attrs})
    return _STAND_INS[key]


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` restricted to latin-1 (Python 3 pickles of ``bytes`` at protocol < 3)."""
    if str(encoding).lower() not in SAFE_CODECS or not isinstance(text, str):
        raise _Refused(f"_codecs.encode with codec {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` restricted to stand-ins built from ``object`` (protocol 0/1 objects)."""
    if base is object and state is None and isinstance(cls, type) and issubclass(
            cls, (ChumpyStandIn, SparseStandIn)):
        return cls.__new__(cls)
    raise _Refused(f"copyreg._reconstructor of {getattr(cls, '__name__', cls)!r}")


_NUMPY = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(m, "_reconstruct"): _multiarray._reconstruct
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _multiarray.scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _numeric._frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
}
_OTHERS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("copyreg", "_reconstructor"): _reconstructor,
}


def _python3_name(module: str, name: str):
    """Python 2 spellings (``__builtin__``, ``copy_reg``) → Python 3 ones, as ``pickle`` maps them."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class SafeUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only the allow-list of the module docstring."""

    def find_class(self, module: str, name: str):
        module, name = _python3_name(module, name)
        key = (module, name)
        if key in _NUMPY:
            return _NUMPY[key]
        if key in _OTHERS:
            return _OTHERS[key]
        if module == "builtins" and name in SAFE_BUILTINS:
            return SAFE_BUILTINS[name]
        if module in CHUMPY_MODULES and name.isidentifier():
            return _stand_in(ChumpyStandIn, module, name, kind=f"{module}.{name}")
        if module in SPARSE_MODULES and name in SPARSE_NAMES:
            return _stand_in(SparseStandIn, module, name, format=SPARSE_NAMES[name])
        raise _Refused(f"{module}.{name}")


def safe_load(path, encoding: str = DEFAULT_ENCODING):
    """Unpickle a data-only file (see the module docstring for what is accepted).

    Parameters
    ----------
    path : str or PathLike
    encoding : str
        How Python 2 byte strings are decoded (``'latin1'`` reads FLAME / VOCA pickles and their arrays).

    Returns
    -------
    The unpickled object; chumpy and scipy sparse objects are stand-ins (see :func:`to_array`).

    Raises
    ------
    ModelFileError
        The file is missing, corrupt, or names anything outside the allow-list (then nothing it names
        was imported or called).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError(f"'{path}' was not found. Check the path.")
    try:
        with open(path, "rb") as handle:
            return SafeUnpickler(handle, encoding=encoding).load()
    except _Refused as exc:
        raise ModelFileError(
            f"refusing to load '{path}': it contains '{exc.qualname}', which could run code; only plain "
            "arrays and containers are accepted. Use the file from its official source.") from None
    except ModelFileError:
        raise
    except OSError as exc:
        raise ModelFileError(f"cannot read '{path}': {exc.strerror}.") from None
    except Exception as exc:  # noqa: BLE001 - a malformed pickle can fail in many ways; all are the file's
        raise ModelFileError(f"'{path}' is not a readable pickle ({type(exc).__name__}: {exc}); "
                             "it may be truncated or corrupt. Download it again.") from None


def to_array(value) -> np.ndarray:
    """Turn a loaded value into a numpy array: stand-ins are evaluated, anything else ``np.asarray``.

    Raises
    ------
    ModelFileError
        For a chumpy expression that cannot be evaluated without chumpy.
    """
    if isinstance(value, (ChumpyStandIn, SparseStandIn)):
        return value.toarray()
    return np.asarray(value)


def to_plain(value):
    """``value`` with every stand-in inside dicts, lists and tuples replaced by :func:`to_array`."""
    if isinstance(value, (ChumpyStandIn, SparseStandIn)):
        return value.toarray()
    if isinstance(value, dict):
        return type(value)((k, to_plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(v) for v in value)
    return value
