"""``models status``: which model files are in the model folder, whether they are valid, where to get the rest.

Checks, per file (all read-only):

* VOCA checkpoint (``*.model.index`` + ``.data-00000-of-00001``): the index describes a VOCA model and
  every inference tensor's CRC-32C matches (about 0.1 s);
* ``output_graph.pb``: its MD5 against the v0.1.0 release's (a different graph may still load, with a
  warning; the full structure is checked when it is first used);
* ``FLAME_sample.ply``, ``texture_mesh.obj`` / ``.png``: SHA-256 against the VOCA repository's files
  (a different template is allowed: it is reported as such, not as an error).

Contract: stdlib + the project's readers; any thread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ..errors import ModelFileError
from . import fetch, modelfiles

OK, MISSING, DAMAGED, DIFFERENT = "ok", "missing", "damaged", "different"
FETCH_HINT = "run 'python -m voca_addon models fetch'"
INSTALL_HINT = (f"register at {modelfiles.VOCA_URL}, then run 'python -m voca_addon models install "
                "DOWNLOADED.zip'")


@dataclass(frozen=True)
class FileStatus:
    """One line of the report: ``state`` is ok / missing / damaged / different."""
    name: str
    state: str
    detail: str


def _voca(folder: Path) -> FileStatus:
    from ..formats import tfbundle
    from ..face import voca
    indexes = sorted(folder.glob("*.model.index"))
    prefix = indexes[0].with_suffix("") if indexes else folder / modelfiles.VOCA_PREFIX_NAME
    name = f"{prefix.name}.* (VOCA trained model)"
    if not all(prefix.with_name(prefix.name + s).is_file() for s in (".index", ".data-00000-of-00001")):
        return FileStatus(name, MISSING, INSTALL_HINT)
    try:
        entries = tfbundle.read_index(prefix)
        dims = voca.infer_dims({n: e.shape for n, e in entries.items()})
        tfbundle.read_checkpoint(prefix, None, verify=True)                # every tensor's CRC-32C
    except ModelFileError as exc:
        return FileStatus(name, DAMAGED, f"{exc} (or {INSTALL_HINT} --overwrite)")
    return FileStatus(name, OK, f"{dims.num_conditions} speaking styles, every tensor's CRC-32C checked")


def _public(spec: "fetch.RemoteFile", folder: Path) -> FileStatus:
    path = folder / spec.name
    if not path.is_file():
        return FileStatus(spec.name, MISSING, f"{FETCH_HINT} (from {spec.page})")
    bad = fetch.file_hashes(path).mismatch(spec)
    if bad is None:
        return FileStatus(spec.name, OK, f"{spec.what}, checksum of the published file")
    return FileStatus(spec.name, DIFFERENT, f"not the published file ({bad}); {FETCH_HINT} after moving it "
                      "away if you want the published one")


def status(folder: Optional[os.PathLike] = None) -> List[FileStatus]:
    """The state of every model file in ``folder`` (default :func:`modelfiles.model_dir`)."""
    target = Path(os.path.expanduser(folder)) if folder else modelfiles.model_dir()
    return [_voca(target)] + [_public(spec, target) for spec in fetch.PUBLIC_FILES]


def usable(rows: List[FileStatus]) -> bool:
    """Whether every file of a :func:`status` is present and not damaged (a different, loadable file counts)."""
    return all(row.state in (OK, DIFFERENT) for row in rows)


def report(folder: Optional[os.PathLike] = None, rows: Optional[List[FileStatus]] = None) -> str:
    """:func:`status` (or the ``rows`` it gave) as text, one line per file, with the folder named first."""
    target = Path(os.path.expanduser(folder)) if folder else modelfiles.model_dir()
    rows = status(target) if rows is None else rows
    lines = [f"model folder: {target}"]
    lines += [f"  {row.state:<9} {row.name}: {row.detail}" for row in rows]
    missing = sum(row.state == MISSING for row in rows)
    damaged = sum(row.state == DAMAGED for row in rows)
    problems = [f"{n} {what}" for n, what in ((missing, "missing"), (damaged, "damaged")) if n]
    lines.append("; ".join(problems) if problems else "all model files are present")
    return "\n".join(lines)
