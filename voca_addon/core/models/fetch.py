"""One setup step for the model files: download the public ones, unpack the VOCA archive, report status.

* :func:`fetch` downloads the public files into the model folder (``$VOCA_MODEL_DIR`` or
  ``~/voca_models``): DeepSpeech v0.1.0's ``output_graph.pb`` — streamed out of the release archive
  ``deepspeech-0.1.0-models.tar.gz`` (tar + gzip read as the bytes arrive; only ``output_graph.pb`` is
  written, and the download stops once it is complete and its MD5 is the release's) — and
  ``FLAME_sample.ply``, ``texture_mesh.obj`` / ``.png`` from the VOCA repository (pinned commits,
  SHA-256 checked).
* Every download goes to a hidden ``.<name>.part`` file. If the connection breaks, the part is kept
  and the next run resumes it with an HTTP ``Range`` request (a server that ignores ``Range`` is read
  from the start again). A file whose checksum is wrong is deleted and refused; nothing unverified ever
  takes a model file's name. That part file is the one write outside :mod:`voca_addon.core.outputs`
  (it must outlive a kill to be resumed); a member extracted from an archive and the installed
  checkpoint go through it (``Staged``, ``StagedFolder``).
* :func:`install_voca_zip` unpacks the VOCA trained-model archive the user downloaded after registering
  at https://voca.is.tue.mpg.de ("Trained Model", 12 MB, holding ``gstep_52280.model.data-00000-of-00001``,
  ``.index`` and ``.meta``; found by name wherever they sit in the zip), checks every tensor's CRC-32C,
  then moves the files into the model folder.
* :func:`status` lists each file: present and valid, damaged / different, or missing with where to get it.

Contract: standard library only (urllib, tarfile, zipfile, hashlib) + the project's checkpoint reader;
any thread (the Blender preferences run :func:`fetch` in a worker thread). ``progress(fraction, stage)``
is called as bytes arrive; raising from it stops the download (the part file is kept for resuming).
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from .. import outputs
from ..errors import ModelFileError
from . import modelfiles

Progress = Optional[Callable[[float, str], None]]
BLOCK = 1 << 20                     # bytes per read
TIMEOUT_S = 30.0                    # seconds without data before a connection counts as broken
USER_AGENT = "voca_addon-model-fetch/1"
VOCA_COMMIT_PLY = "4ab6b246918620498cbdc618b94b08a015017918"       # TimoBolkart/voca, template/FLAME_sample.ply
VOCA_COMMIT_TEXTURE = "6cc3d508c49e1130def51efbf6c777880cea30bb"   # template/texture_mesh.obj / .png
VOCA_RAW = "https://raw.githubusercontent.com/TimoBolkart/voca/{commit}/template/{name}"
VOCA_CKPT_FILES = (".index", ".data-00000-of-00001", ".meta")      # .meta optional


@dataclass(frozen=True)
class RemoteFile:
    """A public model file: where it comes from and how it is verified.

    ``member`` names the file inside a ``.tar.gz`` at ``url`` (then only that member is written);
    ``md5`` / ``sha256`` are of the final file (at least one is given).
    """
    name: str
    url: str
    what: str
    md5: Optional[str] = None
    sha256: Optional[str] = None
    member: Optional[str] = None

    @property
    def page(self) -> str:
        return modelfiles.DEEPSPEECH_URL if self.member else self.url


PUBLIC_FILES = (
    RemoteFile(modelfiles.DEEPSPEECH_NAME, "https://github.com/mozilla/DeepSpeech/releases/download/v0.1.0/"
               "deepspeech-0.1.0-models.tar.gz", "DeepSpeech v0.1.0 graph", md5=modelfiles.DEEPSPEECH_RELEASE_MD5,
               member="output_graph.pb"),
    RemoteFile(modelfiles.TEMPLATE_NAME, VOCA_RAW.format(commit=VOCA_COMMIT_PLY, name="FLAME_sample.ply"),
               "FLAME template", sha256="318e7f64a4ffe6462ea253d58f134b768457ae1e5f8e4fdf2e49fc95c7f17a8b"),
    RemoteFile("texture_mesh.obj", VOCA_RAW.format(commit=VOCA_COMMIT_TEXTURE, name="texture_mesh.obj"),
               "FLAME UV layout", sha256="7812681f71936c7f6ef3e714c8f10855df3344ebb05bd6d250fe6898298abf82"),
    RemoteFile("texture_mesh.png", VOCA_RAW.format(commit=VOCA_COMMIT_TEXTURE, name="texture_mesh.png"),
               "FLAME texture", sha256="e791bb03f33a9ed7a63248ed7e403670bfe741da29a40487268e473ad2e2097e"),
)


def _report(progress: Progress, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(min(1.0, fraction), stage)


class _Hashes:
    """MD5 and SHA-256 of the bytes fed to :meth:`update`."""

    def __init__(self):
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()

    def update(self, data) -> None:
        self.md5.update(data)
        self.sha256.update(data)

    def mismatch(self, spec: RemoteFile) -> Optional[str]:
        """'MD5 x, expected y' (or SHA-256) when a given checksum differs, else None."""
        for label, want, got in (("MD5", spec.md5, self.md5), ("SHA-256", spec.sha256, self.sha256)):
            if want and got.hexdigest() != want:
                return f"{label} {got.hexdigest()}, expected {want}"
        return None


def file_hashes(path: Path) -> _Hashes:
    hashes = _Hashes()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            hashes.update(block)
    return hashes


class _ResumingReader(io.RawIOBase):
    """The bytes at ``url``: first those already in ``part`` (an earlier, interrupted run), then the rest
    from the network (``Range: bytes=<size>-``), each network byte appended to ``part`` as it is read."""

    def __init__(self, spec: RemoteFile, part: Path, progress: Progress, timeout: float):
        self.spec, self.part, self.progress, self.timeout = spec, part, progress, timeout
        self._disk = open(part, "rb") if part.exists() else None
        self._net = self._sink = None
        self._skip = 0
        self.total: Optional[int] = None
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._disk is not None:
            n = self._disk.readinto(buffer)
            if n:
                self.done += n
                return n
            self._disk.close()
            self._disk = None
        if self._net is None:
            self._connect()
        try:
            while self._skip:                      # the server ignored Range: drop what the part holds
                dropped = len(self._net.read(min(self._skip, BLOCK)))
                if not dropped:
                    raise self._broken("the connection closed early")
                self._skip -= dropped
            n = self._net.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:   # reset, timeout, short body: keep the part
            raise self._broken(f"{type(exc).__name__}: {exc}") from None
        if n == 0 and self.total is not None and self.done < self.total:
            raise self._broken("the connection closed early")
        self._sink.write(memoryview(buffer)[:n])
        self.done += n
        if self.total:
            _report(self.progress, self.done / self.total, f"downloading {self.spec.name}")
        return n

    def _connect(self) -> None:
        have = self.part.stat().st_size if self.part.exists() else 0
        headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
        try:
            response = urllib.request.urlopen(urllib.request.Request(self.spec.url, headers=headers),
                                              timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:           # "range not satisfiable": the part is already whole
                self.total, self._net, self._sink = have, io.BytesIO(), open(self.part, "ab")
                return
            raise ModelFileError(f"could not download the {self.spec.what} from {self.spec.url}: the server "
                                 f"answered {exc.code} {exc.reason}. Try again later, or download it by hand "
                                 f"from {self.spec.page}.") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            host = urllib.parse.urlsplit(self.spec.url).netloc
            raise ModelFileError(
                f"could not connect to {host} to download the {self.spec.what} ({getattr(exc, 'reason', exc)}). "
                "Check the internet connection (and a proxy, if you use one) and run 'python -m voca_addon "
                f"models fetch' again, or download it by hand from {self.spec.page}.") from None
        resumed = have and response.status == 206 and response.headers.get(
            "Content-Range", "").startswith(f"bytes {have}-")
        self._skip = 0 if resumed else have         # a 200 answer starts at byte 0: skip what is on disk
        length = response.headers.get("Content-Length")
        self.total = (have if resumed else 0) + int(length) if length and length.isdigit() else None
        self._net, self._sink = response, open(self.part, "ab")

    def _broken(self, reason) -> ModelFileError:
        kept = self.part.stat().st_size if self.part.exists() else 0
        return ModelFileError(
            f"the download of the {self.spec.name} from {self.spec.url} was interrupted ({reason}). Check the "
            f"internet connection and run 'python -m voca_addon models fetch' again: it resumes from the "
            f"{kept / 2**20:.1f} MB already downloaded.")

    def close(self) -> None:
        for handle in (self._disk, self._net, self._sink):
            if handle is not None:
                handle.close()
        super().close()


def _part_path(folder: Path, spec: RemoteFile) -> Path:
    return folder / f".{Path(spec.url).name}.part"


class DamagedDownload(ModelFileError):
    """A download finished but its checksum or archive is wrong (the part file is deleted)."""


def _damaged(spec: RemoteFile, detail: str) -> ModelFileError:
    return DamagedDownload(f"the downloaded {spec.what} is damaged ({detail}); it was deleted. Run "
                          f"'python -m voca_addon models fetch' again, or download it by hand from {spec.page}.")


def _fetch_member(reader: _ResumingReader, spec: RemoteFile, dest: Path) -> None:
    """Stream the tar.gz and write only ``spec.member``; stop reading once it is verified."""
    try:
        with tarfile.open(fileobj=io.BufferedReader(reader, BLOCK), mode="r|gz") as archive:
            for entry in archive:
                if entry.isfile() and Path(entry.name).name == spec.member:
                    return _extract(archive, entry, spec, dest)
    except (tarfile.TarError, zlib.error, EOFError) as exc:
        raise _damaged(spec, f"not a readable .tar.gz: {exc}") from None
    raise _damaged(spec, f"the archive holds no '{spec.member}'")


def _extract(archive: tarfile.TarFile, entry: tarfile.TarInfo, spec: RemoteFile, dest: Path) -> None:
    """Write ``entry`` to ``dest`` through :class:`outputs.Staged`: renamed there only once verified."""
    with outputs.Staged([dest]) as staged:
        hashes = _Hashes()
        try:
            with archive.extractfile(entry) as source, open(staged.temp(dest), "wb") as out:
                for block in iter(lambda: source.read(BLOCK), b""):
                    hashes.update(block)
                    out.write(block)
        except OSError as exc:                  # a full disk (the network's errors are ModelFileError)
            raise ModelFileError(f"cannot write '{dest}': {exc.strerror or exc}. Nothing was written there; "
                                 "free some space or choose another folder.") from None
        bad = hashes.mismatch(spec)
        if bad:
            raise _damaged(spec, bad)
        staged.commit()


def _fetch_one(spec: RemoteFile, folder: Path, progress: Progress, timeout: float) -> Path:
    dest, part = folder / spec.name, _part_path(folder, spec)
    reader = _ResumingReader(spec, part, progress, timeout)
    try:
        if spec.member:
            _fetch_member(reader, spec, dest)
        else:
            while reader.readinto(bytearray(BLOCK)):
                pass
            reader.close()
            bad = file_hashes(part).mismatch(spec)
            if bad:
                raise _damaged(spec, bad)
            outputs.promote(part, dest)
    except DamagedDownload:
        reader.close()
        part.unlink(missing_ok=True)                 # a resumed download would stay damaged
        raise
    finally:
        reader.close()
    part.unlink(missing_ok=True)                     # an archive whose member is extracted
    return dest


def verified(spec: RemoteFile, folder: Path) -> bool:
    """The file is in ``folder`` with the expected checksum."""
    path = folder / spec.name
    return path.is_file() and file_hashes(path).mismatch(spec) is None


def fetch(folder: Optional[os.PathLike] = None, files: Sequence[RemoteFile] = PUBLIC_FILES,
          progress: Progress = None, timeout: float = TIMEOUT_S) -> List[str]:
    """Download every public model file that is not already present and verified.

    Parameters
    ----------
    folder : path-like, optional
        The model folder (default :func:`modelfiles.model_dir`); created if needed.
    files : RemoteFile specs
        What to fetch (default :data:`PUBLIC_FILES`).
    progress : callable(fraction, stage) or None
        Fraction of the current file; stage ``downloading <name>`` / ``verifying <name>``.

    Returns
    -------
    list of str
        One line per file: ``<name>: downloaded and verified`` / ``already present and verified``.

    Raises
    ------
    ModelFileError
        Server unreachable or answering an error, a broken connection (the part is kept: run again to
        resume), a damaged download (deleted), or a folder that cannot be written.
    """
    target = Path(os.path.expanduser(folder)) if folder else modelfiles.model_dir()
    modelfiles.make_folder(target, target)
    lines = []
    for spec in files:
        _report(progress, 0.0, f"verifying {spec.name}")
        if verified(spec, target):
            lines.append(f"{target / spec.name}: already present and verified")
            continue
        lines.append(f"{_fetch_one(spec, target, progress, timeout)}: downloaded and verified")
    return lines


def install_voca_zip(zip_path: os.PathLike, folder: Optional[os.PathLike] = None,
                     overwrite: bool = False) -> List[Path]:
    """Unpack VOCA's trained-model zip into the model folder after checking every tensor's CRC-32C.

    Members are found by name (``*.model.index``, ``*.model.data-00000-of-00001``, ``*.model.meta``)
    wherever they are in the archive; nothing else is written. Existing different files are replaced
    only with ``overwrite``.

    Raises
    ------
    ModelFileError
        Not a zip, no VOCA checkpoint inside, a damaged checkpoint, existing files without ``overwrite``.
    """
    source, target = Path(os.path.expanduser(zip_path)), Path(os.path.expanduser(folder)) if folder else modelfiles.model_dir()
    if source.is_dir():
        raise ModelFileError(f"'{source}' is a folder; give the VOCA trained-model zip file itself.")
    if target.exists() and not target.is_dir():
        raise ModelFileError(f"--folder '{target}' is a file, not a folder; give the model folder.")
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"'{source}' is not a readable zip archive ({exc}); download the VOCA trained "
                             f"model again from {modelfiles.VOCA_URL}") from None
    with archive:
        members = {Path(m.filename).name: m for m in archive.infolist() if not m.is_dir()}
        prefix = next((n[:-len(".index")] for n in sorted(members) if n.endswith(".model.index")), None)
        if prefix is None or prefix + ".data-00000-of-00001" not in members:
            raise ModelFileError(f"'{source}' holds no VOCA checkpoint (gstep_52280.model.index and "
                                 f".data-00000-of-00001); is it the 'VOCA trained model' download from "
                                 f"{modelfiles.VOCA_URL}?")
        names = [prefix + s for s in VOCA_CKPT_FILES if prefix + s in members]
        target.mkdir(parents=True, exist_ok=True)
        with outputs.StagedFolder(target) as staged:     # inside or beside target; swept if a kill leaves it
            staging = staged.temp()
            for name in names:
                try:
                    with archive.open(members[name]) as src, open(staging / name, "wb") as out:
                        shutil.copyfileobj(src, out, BLOCK)
                except OSError as exc:          # a full disk: the staging folder is removed on the way out
                    raise ModelFileError(f"cannot install into '{target}': {exc.strerror or exc}. Nothing was "
                                         "installed; free some space there or choose another --folder.") from None
            _check_checkpoint(staging / prefix, source)
            _refuse_differing(staging, names, target, overwrite)
            staged.commit()
    return [target / n for n in names]


def _check_checkpoint(prefix: Path, source: Path) -> None:
    """A VOCA model whose every tensor is readable with a matching CRC-32C (ModelFileError naming the zip)."""
    from ..formats import tfbundle
    from ..face import voca
    try:
        entries = tfbundle.read_index(prefix)
        voca.infer_dims({name: e.shape for name, e in entries.items()})
        tfbundle.read_checkpoint(prefix, None, verify=True)                # every tensor, optimizer slots too
    except ModelFileError as exc:
        raise ModelFileError(f"the VOCA checkpoint in '{source}' is not usable: {exc}") from None


def _refuse_differing(staging: Path, names: List[str], target: Path, overwrite: bool) -> None:
    differing = [target / n for n in names if (target / n).exists() and
                 file_hashes(target / n).sha256.hexdigest() != file_hashes(staging / n).sha256.hexdigest()]
    if differing and not overwrite:
        raise ModelFileError(f"'{differing[0]}' already exists and differs from the archive's; add --overwrite "
                             "to replace it, or install into another folder with --folder")
