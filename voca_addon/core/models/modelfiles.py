"""Find, validate, load and cache the user's model files (never shipped with the project).

Files (see ``docs/models.md`` for where each comes from and its license):

* VOCA checkpoint ``gstep_52280.model.index`` + ``.data-00000-of-00001`` (TF tensor bundle),
* DeepSpeech v0.1.0 ``output_graph.pb`` (frozen TF GraphDef, ~491 MB),
* a FLAME template mesh (``FLAME_sample.ply``).

Lookup order: an explicit path (CLI flag / Blender preference), then ``$VOCA_MODEL_DIR``, then the
documented folder ``~/voca_models``. Missing files raise :class:`ModelFileError` naming the file, where to
download it and where to put it — never a substitute.

Cache: the inference tensors are stored once as uncompressed ``.npy`` files (memory-mapped on load)
under ``$VOCA_CACHE_DIR`` or ``~/.cache/voca_addon``, in a folder named by the source's size and
SHA-256. A small stat index (path, size, mtime) lets a cached load skip re-hashing the source.

Contract: numpy + stdlib; reads files, writes only inside the cache folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from ..speech import deepspeech
from ..face import voca
from ..errors import ModelFileError

VOCA_PREFIX_NAME = "gstep_52280.model"
DEEPSPEECH_NAME = "output_graph.pb"
TEMPLATE_NAME = "FLAME_sample.ply"
VOCA_URL = "https://voca.is.tue.mpg.de (register, then download 'VOCA trained model')"
DEEPSPEECH_URL = ("https://github.com/mozilla/DeepSpeech/releases/tag/v0.1.0 "
                  "(deepspeech-0.1.0-models.tar.gz, file models/output_graph.pb)")
TEMPLATE_URL = "https://github.com/TimoBolkart/voca/tree/master/template (FLAME_sample.ply)"
CACHE_VERSION = 1
HASH_CHUNK = 16 << 20      # bytes read per hashing step


def model_dir() -> Path:
    """The documented default folder for model files: ``$VOCA_MODEL_DIR`` or ``~/voca_models``."""
    env = os.environ.get("VOCA_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / "voca_models"


def cache_dir() -> Path:
    env = os.environ.get("VOCA_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "voca_addon"


def _missing(what: str, expected: Path, url: str, hint: str) -> ModelFileError:
    return ModelFileError(
        f"{what} not found: expected {expected}. Download it from {url} and put it there, "
        f"{hint}, or set VOCA_MODEL_DIR to the folder that holds it.")


def resolve_voca(path: Optional[os.PathLike] = None) -> Path:
    """The checkpoint prefix (``.../gstep_52280.model``) from a prefix, a file of it, or a folder."""
    p = Path(path).expanduser() if path else model_dir()
    if p.is_dir() or not path:
        indexes = (sorted(p.glob("*.model.index")) or sorted(p.glob("*.index"))) if p.is_dir() else []
        p = indexes[0] if indexes else p / VOCA_PREFIX_NAME
    name = p.name
    for suffix in (".index", ".meta", ".data-00000-of-00001"):
        if name.endswith(suffix):
            p = p.with_name(name[: -len(suffix)])
    for needed in (p.with_name(p.name + ".index"), p.with_name(p.name + ".data-00000-of-00001")):
        if not needed.is_file():
            raise _missing(f"VOCA checkpoint file '{needed.name}'", needed, VOCA_URL,
                           "with all gstep_52280.model.* files in the same folder (pass the folder or the "
                           "prefix with --voca / the add-on preferences)")
    return p


def resolve_deepspeech(path: Optional[os.PathLike] = None) -> Path:
    p = Path(path).expanduser() if path else model_dir() / DEEPSPEECH_NAME
    if p.is_dir():
        p = p / DEEPSPEECH_NAME
    if not p.is_file():
        raise _missing("DeepSpeech v0.1.0 graph 'output_graph.pb'", p, DEEPSPEECH_URL,
                       "(pass it with --deepspeech / the add-on preferences)")
    return p


def resolve_template(path: Optional[os.PathLike] = None) -> Path:
    p = Path(path).expanduser() if path else model_dir() / TEMPLATE_NAME
    if not p.is_file():
        raise _missing("FLAME template mesh", p, TEMPLATE_URL, "(pass it with --template)")
    return p


def files_sha256(paths) -> str:
    """SHA-256 of the concatenated contents of ``paths``."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(HASH_CHUNK), b""):
                h.update(block)
    return h.hexdigest()


def _stat_key(paths) -> str:
    return ";".join(f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in paths)


def _cached(kind: str, sources, convert: Callable[[], Dict[str, np.ndarray]],
            cache: Optional[Path]) -> Dict[str, np.ndarray]:
    """Tensors read from ``sources`` (files), from the cache or converted (and cached) on a miss."""
    root = Path(cache) if cache else cache_dir()
    index_file = root / f"{kind}-index.json"
    try:
        index = json.loads(index_file.read_text("utf-8"))
    except (OSError, ValueError):
        index = {}
    size = sum(p.stat().st_size for p in sources)
    key = _stat_key(sources)
    digest = index.get(key)
    folder = root / f"{kind}-v{CACHE_VERSION}-{size}-{digest}" if digest else None
    if folder is not None and (folder / "manifest.json").is_file():
        try:
            return _load_cache(folder)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    tensors = convert()
    digest = files_sha256(sources)
    folder = root / f"{kind}-v{CACHE_VERSION}-{size}-{digest[:16]}"
    try:
        _write_cache(folder, tensors, {"sources": [str(p) for p in sources], "sha256": digest})
        index[key] = digest[:16]
        tmp = index_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1), "utf-8")
        os.replace(tmp, index_file)
    except OSError:
        # A read-only cache only costs speed; copy out of the source (its views may be unaligned).
        return {n: np.array(a) for n, a in tensors.items()}
    return _load_cache(folder)


def _load_cache(folder: Path) -> Dict[str, np.ndarray]:
    """Memory-mapped, aligned arrays of a cache folder."""
    names = json.loads((folder / "manifest.json").read_text("utf-8"))["tensors"]
    return {n: np.load(folder / f"{i:03d}.npy", mmap_mode="r") for i, n in enumerate(names)}


def _write_cache(folder: Path, tensors: Dict[str, np.ndarray], meta: dict) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        names = list(tensors)
        for i, n in enumerate(names):
            np.save(tmp / f"{i:03d}.npy", np.ascontiguousarray(tensors[n]))
        (tmp / "manifest.json").write_text(json.dumps(dict(meta, tensors=names)), "utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read_voca_tensors(prefix: Path) -> Dict[str, np.ndarray]:
    from . import tfbundle
    entries = tfbundle.read_index(prefix)
    dims = voca.infer_dims({n: e.shape for n, e in entries.items()})
    return tfbundle.read_checkpoint(prefix, names=voca.weight_names(dims.decoder_scope))


def _read_deepspeech_tensors(pb: Path) -> Dict[str, np.ndarray]:
    from . import graphdef
    graph = graphdef.read_graph(pb)
    deepspeech.refuse_newer_graph(graph.nodes.keys(), f"'{pb}'")
    consts = graph.constants()
    return {n: consts[n] for n in deepspeech.tensor_names()}


def load_voca(path: Optional[os.PathLike] = None, cache: Optional[Path] = None) -> voca.VocaModel:
    """Load (and cache) a VOCA checkpoint; see :func:`resolve_voca` for ``path``."""
    prefix = resolve_voca(path)
    files = [prefix.with_name(prefix.name + s) for s in (".index", ".data-00000-of-00001")]
    tensors = _cached("voca", files, lambda: _read_voca_tensors(prefix), cache)
    return voca.model_from_tensors(tensors)


def load_deepspeech(path: Optional[os.PathLike] = None, cache: Optional[Path] = None) -> deepspeech.DeepSpeechModel:
    """Load (and cache) DeepSpeech v0.1.0's ``output_graph.pb``."""
    pb = resolve_deepspeech(path)
    tensors = _cached("deepspeech", [pb], lambda: _read_deepspeech_tensors(pb), cache)
    return deepspeech.model_from_tensors(tensors, f"'{pb}'")
