"""Find, validate, load and cache the user's model files (never shipped with the project).

Files (see ``docs/models.md`` for where each comes from and its license):

* VOCA checkpoint ``gstep_52280.model.index`` + ``.data-00000-of-00001`` (TF tensor bundle),
* DeepSpeech v0.1.0 ``output_graph.pb`` (frozen TF GraphDef, ~491 MB),
* a FLAME template mesh (``FLAME_sample.ply``).

Lookup order: an explicit path (CLI flag / Blender preference), then ``$VOCA_MODEL_DIR``, then the
documented folder ``~/voca_models``. Missing files raise :class:`MissingModelFiles` naming the file, where to
download it and where to put it — never a substitute; :func:`check_model_files` names every missing file of
a run in one message.

Integrity (on the first read of a file, i.e. on a cache miss): every VOCA tensor's CRC-32C is checked against
the one the ``.index`` holds (a mismatch: "the file is damaged (checksum mismatch in tensor …): download it
again from …"), and non-finite weights are refused in both models. The DeepSpeech graph's MD5 is compared
with the v0.1.0 release's (:data:`DEEPSPEECH_RELEASE_MD5`); another graph that passes the structure check
loads with a :class:`NonReleaseGraphWarning` (one line; the CLI prints it as ``warning: ...``). Later loads
trust the cache, which is keyed by the files' SHA-256 and remembers their MD5.

Cache: the inference tensors are stored once as uncompressed ``.npy`` files (memory-mapped on load)
under ``$VOCA_CACHE_DIR`` or ``~/.cache/voca_addon``, in a folder named by the source's size and
SHA-256. A small stat index (path, size, mtime) lets a cached load skip re-hashing the source.

Contract: numpy + stdlib; reads files, writes only inside the cache folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..speech import deepspeech
from ..face import voca
from ..caches import cache_dir
from .. import outputs
from ..errors import InputError, ModelFileError

VOCA_PREFIX_NAME = "gstep_52280.model"
DEEPSPEECH_NAME = "output_graph.pb"
TEMPLATE_NAME = "FLAME_sample.ply"
VOCA_URL = "https://voca.is.tue.mpg.de (register, then download 'VOCA trained model')"
DEEPSPEECH_URL = ("https://github.com/mozilla/DeepSpeech/releases/tag/v0.1.0 "
                  "(deepspeech-0.1.0-models.tar.gz, file models/output_graph.pb)")
TEMPLATE_URL = "https://github.com/TimoBolkart/voca/tree/master/template (FLAME_sample.ply)"
DEEPSPEECH_RELEASE_MD5 = "08a9e6e8dc450007a0df0a37956bc795"   # v0.1.0 release's models/output_graph.pb
CACHE_VERSION = 2          # 2: entries made after checksum / finiteness checks, manifest holds the MD5
HASH_CHUNK = 16 << 20      # bytes read per hashing step


def model_dir() -> Path:
    """The documented default folder for model files: ``$VOCA_MODEL_DIR`` or ``~/voca_models``."""
    env = os.environ.get("VOCA_MODEL_DIR")
    return Path(os.path.expanduser(env)) if env else Path.home() / "voca_models"


def make_folder(path: Path, shown: Path, hint: str = "folder with --folder or VOCA_MODEL_DIR") -> None:
    """Create ``path`` (the model folder ``shown``, or its parent for the claim file beside it) and its parents;
    ModelFileError naming ``shown`` and where to choose another (``hint``) when it cannot be made."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(f"cannot create the model folder '{shown}' ({exc.strerror or exc}); choose "
                             f"another {hint}") from None


class MissingModelFiles(ModelFileError):
    """One or more model files are not where they were looked for.

    Attributes
    ----------
    files : list of (what, expected path, url, hint)
        One entry per missing file, for :func:`check_model_files` to combine into one message.
    """

    def __init__(self, files):
        self.files = list(files)
        super().__init__(_missing_message(self.files))


def _missing_message(files) -> str:
    if len(files) == 1:
        what, expected, url, hint = files[0]
        return (f"{what} not found: expected {expected}. Download it from {url} and put it there, "
                f"{hint}, or set VOCA_MODEL_DIR to the folder that holds it.")
    listed = "; ".join(f"({i}) {what}: expected {expected}, from {url}"
                       for i, (what, expected, url, _hint) in enumerate(files, 1))
    return (f"{len(files)} model files are missing: {listed}. Put each where it is expected, pass its path "
            "(--voca / --deepspeech / --template, or the add-on preferences), or set VOCA_MODEL_DIR to "
            "the folder that holds them.")


class NonReleaseGraphWarning(UserWarning):
    """The DeepSpeech graph has the v0.1.0 structure but is not the released file (MD5 differs)."""


def _missing(what: str, expected: Path, url: str, hint: str) -> MissingModelFiles:
    return MissingModelFiles([(what, expected, url, hint)])


def resolve_voca(path: Optional[os.PathLike] = None) -> Path:
    """The checkpoint prefix (``.../gstep_52280.model``) from a prefix, a file of it, or a folder."""
    p = Path(os.path.expanduser(path)) if path else model_dir()
    if p.is_dir() or not path:
        indexes = (sorted(p.glob("*.model.index")) or sorted(p.glob("*.index"))) if p.is_dir() else []
        p = indexes[0] if indexes else p / VOCA_PREFIX_NAME
    name = p.name
    for suffix in (".index", ".meta", ".data-00000-of-00001"):
        if name.endswith(suffix):
            p = p.with_name(name[: -len(suffix)])
    missing = [(f"VOCA checkpoint file '{needed.name}'", needed, VOCA_URL,
                "with all gstep_52280.model.* files in the same folder (pass the folder or the prefix with "
                "--voca / the add-on preferences)")
               for needed in (p.with_name(p.name + ".index"), p.with_name(p.name + ".data-00000-of-00001"))
               if not needed.is_file()]
    if missing:                 # the two come in one download: name the first one missing
        raise MissingModelFiles(missing[:1])
    return p


def resolve_deepspeech(path: Optional[os.PathLike] = None) -> Path:
    p = Path(os.path.expanduser(path)) if path else model_dir() / DEEPSPEECH_NAME
    if p.is_dir():
        p = p / DEEPSPEECH_NAME
    if not p.is_file():
        raise _missing("DeepSpeech v0.1.0 graph 'output_graph.pb'", p, DEEPSPEECH_URL,
                       "(pass it with --deepspeech / the add-on preferences)")
    return p


def resolve_template(path: Optional[os.PathLike] = None) -> Path:
    p = Path(os.path.expanduser(path)) if path else model_dir() / TEMPLATE_NAME
    if not p.is_file():
        raise _missing("FLAME template mesh", p, TEMPLATE_URL, "(pass it with --template)")
    return p


def check_model_files(voca_path=None, deepspeech_path=None, template_path=None, need_voca: bool = True,
                      need_deepspeech: bool = True, need_template: bool = True) -> tuple:
    """Resolve the VOCA checkpoint, the DeepSpeech graph and the template a run needs, all at once.

    Returns
    -------
    tuple
        (VOCA prefix, DeepSpeech ``.pb``, template path); None for each one not needed.

    Raises
    ------
    MissingModelFiles
        Every missing file named in one message (what, where it was expected, where to get it).
    """
    wanted = ((need_voca, resolve_voca, voca_path), (need_deepspeech, resolve_deepspeech, deepspeech_path),
              (need_template, resolve_template, template_path))
    found, missing = [], []
    for needed, resolve, given in wanted:
        try:
            found.append(resolve(given or None) if needed else None)
        except MissingModelFiles as exc:
            missing.extend(exc.files)
    if missing:
        raise MissingModelFiles(missing)
    return tuple(found)


def files_digests(paths) -> Dict[str, str]:
    """``{"sha256": ..., "md5": ...}`` of the concatenated contents of ``paths`` (hex), in one pass.

    The MD5 of each block runs in a second thread while the SHA-256 runs here (hashlib releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with ThreadPoolExecutor(max_workers=1) as pool:
        for path in paths:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(HASH_CHUNK), b""):
                    pending = pool.submit(md5.update, block)
                    sha.update(block)
                    pending.result()
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def files_sha256(paths) -> str:
    """SHA-256 of the concatenated contents of ``paths``."""
    return files_digests(paths)["sha256"]


def _stat_key(paths) -> str:
    return ";".join(f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in paths)


def files_identity(kind: str, sources, cache: Optional[Path] = None) -> str:
    """The model cache's key of ``sources``: the first 16 hex digits of their SHA-256 (``kind``: ``voca`` or
    ``deepspeech``); from the cache's stat index when the files are unchanged since cached, else hashed."""
    sources = [Path(p) for p in sources]
    root = Path(cache) if cache else cache_dir()
    try:
        index = json.loads((root / f"{kind}-index.json").read_text("utf-8"))
    except (OSError, ValueError):
        index = {}
    found = index.get(_stat_key(sources)) if isinstance(index, dict) else None
    return found if isinstance(found, str) else files_sha256(sources)[:16]


def _cached(kind: str, sources, convert: Callable[[], Dict[str, np.ndarray]],
            cache: Optional[Path]) -> Tuple[Dict[str, np.ndarray], dict]:
    """(tensors, meta) read from ``sources`` (files): from the cache, or converted (and cached) on a miss.

    ``meta`` holds the sources' ``sha256`` and ``md5``.
    """
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
    damaged = False
    if folder is not None and (folder / "manifest.json").is_file():
        try:
            return _load_cache(folder)
        except (OSError, ValueError, KeyError):
            damaged = True  # a damaged cache entry is rebuilt below
    tensors = convert()
    meta = files_digests(sources)
    folder = root / f"{kind}-v{CACHE_VERSION}-{size}-{meta['sha256'][:16]}"
    try:
        _write_cache(folder, tensors, dict(meta, sources=[str(p) for p in sources]), damaged)
        index[key] = meta["sha256"][:16]
        text = json.dumps(index, indent=1)   # one temporary per process: batch workers write it side by side
        outputs.write_exact(index_file, lambda temp: temp.write_text(text, "utf-8"), fault_points=False)
        return _load_cache(folder)
    except (OSError, ValueError, KeyError, InputError):
        # A read-only cache only costs speed; copy out of the source (its views may be unaligned).
        return {n: np.array(a) for n, a in tensors.items()}, meta


def _load_cache(folder: Path) -> Tuple[Dict[str, np.ndarray], dict]:
    """Memory-mapped, aligned arrays of a cache folder, and its manifest."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    names = manifest["tensors"]
    return {n: np.load(folder / f"{i:03d}.npy", mmap_mode="r") for i, n in enumerate(names)}, manifest


def _write_cache(folder: Path, tensors: Dict[str, np.ndarray], meta: dict, damaged: bool = False) -> None:
    """Write a cache entry through :class:`~voca_addon.core.outputs.StagedFolder` (renamed into place).

    The folder is named by the sources' SHA-256, so an entry another process (a batch worker beside
    this one) has completed, before or meanwhile, holds the same tensors: it is kept and may be in use,
    never replaced (its files are not renamed over). Only the files of a ``damaged`` entry, or of one
    without its manifest (not a complete entry), are replaced.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    if (folder / "manifest.json").is_file() and not damaged:
        return
    with outputs.StagedFolder(folder, fault_points=False) as staged:
        tmp, names = staged.temp(), list(tensors)
        for i, n in enumerate(names):
            np.save(tmp / f"{i:03d}.npy", np.ascontiguousarray(tensors[n]))
        (tmp / "manifest.json").write_text(json.dumps(dict(meta, tensors=names)), "utf-8")
        staged.commit(replace=lambda name: damaged or not (folder / "manifest.json").is_file())


def refuse_non_finite(tensors: Dict[str, np.ndarray], source: str, hint: str) -> None:
    """Raise ModelFileError naming the first float tensor holding NaN or infinity (weights never do)."""
    for name, arr in tensors.items():
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise ModelFileError(f"{source} holds non-finite weights (NaN or infinity) in tensor '{name}', "
                                 f"so it cannot animate anything: {hint}")


def _read_voca_tensors(prefix: Path) -> Dict[str, np.ndarray]:
    """The inference tensors, each checked against the CRC-32C in the ``.index``, all finite."""
    from ..formats import tfbundle
    entries = tfbundle.read_index(prefix)
    dims = voca.infer_dims({n: e.shape for n, e in entries.items()})
    tensors = tfbundle.read_checkpoint(prefix, names=voca.weight_names(dims.decoder_scope), verify=True)
    refuse_non_finite(tensors, f"the VOCA checkpoint {prefix}", "download it again from " + VOCA_URL +
                      " (a model from your own training run that diverged cannot be used)")
    return tensors


def _read_deepspeech_tensors(pb: Path) -> Dict[str, np.ndarray]:
    from ..formats import graphdef
    graph = graphdef.read_graph(pb)
    deepspeech.refuse_newer_graph(graph.nodes.keys(), f"'{pb}'")
    consts = graph.constants()
    tensors = {n: consts[n] for n in deepspeech.tensor_names()}
    refuse_non_finite(tensors, f"the DeepSpeech graph {pb}", "download it again from " + DEEPSPEECH_URL)
    return tensors


def load_voca(path: Optional[os.PathLike] = None, cache: Optional[Path] = None) -> voca.VocaModel:
    """Load (and cache) a VOCA checkpoint; see :func:`resolve_voca` for ``path``.

    Raises
    ------
    ModelFileError
        Missing, truncated or damaged files (checksum mismatch), non-finite weights, not a VOCA model.
    """
    prefix = resolve_voca(path)
    files = [prefix.with_name(prefix.name + s) for s in (".index", ".data-00000-of-00001")]
    tensors, _meta = _cached("voca", files, lambda: _read_voca_tensors(prefix), cache)
    return voca.model_from_tensors(tensors)


def load_deepspeech(path: Optional[os.PathLike] = None, cache: Optional[Path] = None) -> deepspeech.DeepSpeechModel:
    """Load (and cache) DeepSpeech v0.1.0's ``output_graph.pb``.

    A graph with the v0.1.0 structure whose MD5 is not the release's loads with a
    :class:`NonReleaseGraphWarning` (``warnings.warn``; every load).
    """
    pb = resolve_deepspeech(path)
    tensors, meta = _cached("deepspeech", [pb], lambda: _read_deepspeech_tensors(pb), cache)
    model = deepspeech.model_from_tensors(tensors, f"'{pb}'")
    if meta.get("md5") != DEEPSPEECH_RELEASE_MD5:
        warnings.warn(f"{pb} is not the DeepSpeech v0.1.0 release file (MD5 {meta.get('md5')}, the release's "
                      f"is {DEEPSPEECH_RELEASE_MD5}); it has the right structure and is used, but results "
                      "differ from VOCA's unless it is the same network", NonReleaseGraphWarning, stacklevel=2)
    return model
