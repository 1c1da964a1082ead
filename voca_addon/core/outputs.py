"""No output ever lost: check every destination before computing, write all of them or none.

The rules every command follows (CLI, headless Blender jobs):

1. **Checked first.** :func:`check_output` refuses, before any model is loaded, a destination whose
   folder is missing or not writable (probed by creating and deleting a file there), that is a folder
   where a file is expected, that has the wrong extension, or that already exists without
   ``overwrite``; inside a command run it then claims the destination (:mod:`.claims`), so a second
   run into it is refused while the first is alive. :func:`check_distinct` refuses two outputs with the same path and an output that is
   also an input, unless the command allows replacing its input (``--scene X --out X`` with
   ``--overwrite``).
2. **Exact names.** The file written is the path given; nothing is appended (``out.txt`` is refused,
   never turned into ``out.txt.npz``).
3. **All or nothing.** :class:`Staged` hands out a hidden temporary name next to each destination; the
   caller writes there; :meth:`Staged.commit` renames every one into place only when all are written.
   Any exception (a failed render, Ctrl-C) deletes the temporary files, so no destination is touched.
4. **Backups like Blender.** Replacing an existing ``.blend`` keeps the old one as ``X.blend1`` (a hard link
   or copy renamed there, so ``X.blend`` holds the old file or the new one at every instant).
5. **The user's paths in messages**: errors name the destination, never the temporary file.
6. **Short temporary names, no leftovers.** A temporary name is ``.voca-DIGEST.HOST.PID.RANDOM.part.EXT``
   (:func:`temp_name`, under 60 bytes whatever the destination's name: a legal 255-byte or non-Latin
   name never fails on its temporary twin). ``DIGEST`` comes from the destination's name, so the next
   write to the same destination finds what a killed run (``kill -9``, a power cut) left and removes it
   (:func:`sweep_leftovers`): on this host when that process is gone, from another host (a shared folder)
   when it is older than :data:`FOREIGN_LEFTOVER_S`. A destination that is itself a temporary name (a
   writer handed a :class:`Staged` temporary) is written in place, never through a temporary of its own.
7. **Proven by killing.** :mod:`.faults` points mark the write, the commit and each rename; the kill test
   (``tests/core/test_fault_injection.py``, ``tools/fault_sweep.py``) stops runs there. Caches (the model
   cache, the phone tracks) write with ``fault_points=False``: they are not the user's files, and their
   writes happen only on a cold cache, so their hits would make a run's count depend on what ran before.
8. **Folders too.** :class:`StagedFolder` is the same for a folder of files (an OBJ sequence, a model-cache
   entry, an installed checkpoint): written under ``temp_name(dest)``, then renamed into place in one step
   when ``dest`` is absent or empty, or its files moved in one by one (each the old file or the new one at
   every instant) when ``dest`` already holds files, staged inside it then (same file system).

Every file the project writes goes through here. A file that must outlive a kill under a name of its own
(the resumable model download's ``.NAME.part``, :mod:`voca_addon.core.models.fetch`: the next run resumes it
with an HTTP ``Range``) is put at its name by :func:`promote` once it is verified.

Contract: stdlib only; raises :class:`~voca_addon.core.errors.InputError`; not thread-safe per
instance (one command, one :class:`Staged` / :class:`StagedFolder`).
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, Sequence

from . import claims, faults
from .errors import InputError, VocaError

BACKUP_SUFFIXES = (".blend",)       # replaced files of these kinds are kept as NAME1 (X.blend1)
TEMP_PREFIX = ".voca-"
NAME_MAX = 255                      # bytes of one file name where the file system cannot say
FOREIGN_LEFTOVER_S = 24 * 3600.0    # another host's temporary file older than this is a leftover


def temp_name(dest: Path) -> Path:
    """A fresh hidden temporary path beside ``dest`` (module rule 6); no file is made."""
    dest = Path(dest)
    ext = "".join(c for c in dest.suffix[:12] if c.isascii() and (c.isalnum() or c == "."))
    return dest.with_name(f"{TEMP_PREFIX}{claims.digest(dest.name, 12)}.{claims.HOST_TOKEN}.{os.getpid()}."
                          f"{secrets.token_hex(4)}.part{ext}")


_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{12}\.[0-9a-f]{6}\.[0-9]+\.[0-9a-f]{8}\.part[A-Za-z0-9.]*")


def is_temp(path: Path) -> bool:
    """Whether ``path`` is a temporary name made by :func:`temp_name` (a destination's hidden twin), to the
    letter: a user's own file that merely starts with ``.voca-`` is never taken for one."""
    return _TEMP_NAME.fullmatch(Path(path).name) is not None


def _owner_gone(host: str, pid: str, mtime: float) -> bool:
    if host != claims.HOST_TOKEN:
        return time.time() - mtime > FOREIGN_LEFTOVER_S
    return claims.process_gone(pid)


def sweep_leftovers(dest: Path) -> int:
    """Remove temporary files of ``dest`` left by runs that are gone, and temporary folders: a
    :class:`StagedFolder` beside ``dest`` or inside it (``dest`` a folder), a render's frames folder
    ``TEMP.frames`` (:mod:`voca_addon.blender.exports.framewise`); returns how many were removed."""
    dest = Path(dest)
    removed = 0
    pattern = f"{TEMP_PREFIX}{claims.digest(dest.name, 12)}.*.part*"
    try:
        candidates = list(dest.parent.glob(pattern))
        if dest.is_dir() and not dest.is_symlink():
            candidates += dest.glob(pattern)
    except OSError:
        return 0
    for path in candidates:
        parts = path.name[len(TEMP_PREFIX):].split(".")
        try:
            if len(parts) >= 5 and _owner_gone(parts[1], parts[2], path.stat().st_mtime):
                if path.is_dir() and not path.is_symlink():     # a StagedFolder, a render's TEMP.frames
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
        except OSError:
            pass                            # gone already, or not ours to remove
    return removed


def _probe_writable(folder: Path, shown: Path) -> None:
    """Create and delete a file in ``folder``; InputError naming ``shown`` when that fails."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".voca-write-check.", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            if not folder.is_dir():                  # removed since it was checked
                raise InputError(f"cannot write '{shown}': the folder '{folder}' does not exist. Create it "
                                 "first.") from None
            raise InputError(f"cannot write '{shown}': the folder '{folder}' takes no new files (a system "
                             "folder). Choose another folder.") from None
        raise InputError(f"cannot write '{shown}': the folder '{folder}' is not writable "
                         f"({exc.strerror or exc}). Choose another folder or fix its permissions.") from None


def _check_name_length(out: Path, flag: str) -> None:
    """InputError when ``out``'s name is longer than its folder's file system allows (bytes, UTF-8; an
    existing ``.blend`` to replace counts one more, for the ``X.blend1`` it keeps). The temporary names
    never grow with it."""
    size = len(out.name.encode("utf-8", "surrogateescape"))
    backup = " (with the 1 of its backup X.blend1)" if _keeps_backup(out) and out.is_file() else ""
    size += 1 if backup else 0
    try:
        limit = os.pathconf(out.parent, "PC_NAME_MAX") if out.parent.is_dir() else NAME_MAX
    except (OSError, ValueError):
        limit = NAME_MAX
    if size > limit:
        raise InputError(f"{flag} '{out}': the file name is {size} bytes long in UTF-8{backup}; this file system "
                         f"allows at most {limit}. Choose a shorter name.")


def check_output(path, flag: str = "--out", suffixes: Sequence[str] = (), overwrite: bool = False,
                 folder_output: bool = False) -> Path:
    """Check one destination before anything is computed.

    Parameters
    ----------
    path : str or os.PathLike
        The destination as the user gave it.
    flag : str
        The option that named it, for the messages (``--out``, ``--render``).
    suffixes : sequence of str
        Accepted extensions (lower case, with the dot); empty accepts any.
    overwrite : bool
        Whether an existing file may be replaced (``--overwrite``).
    folder_output : bool
        The destination is a folder the command fills (OBJ sequences): it may exist as a folder.

    Returns
    -------
    Path
        The absolute destination.

    Raises
    ------
    InputError
        Wrong extension, missing or unwritable folder, a folder in the way, an existing file without
        ``overwrite``.
    """
    out = Path(os.path.abspath(os.fspath(path)))
    if suffixes and not out.name.lower().endswith(tuple(suffixes)):
        raise InputError(f"{flag} '{out}' must end in {' or '.join(suffixes)} (the file is written with "
                         "exactly the name given).")
    folder = out if folder_output and out.is_dir() else out.parent
    _check_name_length(out, flag)
    if not folder.is_dir():
        raise InputError(f"cannot write '{out}': the folder '{folder}' does not exist. Create it first.")
    if not folder_output and out.is_dir():
        raise InputError(f"{flag} '{out}' is a folder; give a file name.")
    if out.exists() and not folder_output and not overwrite:
        raise InputError(f"'{out}' already exists; add --overwrite to replace it"
                         f"{' (the old file is kept as ' + out.name + '1)' if _keeps_backup(out) else ''}, "
                         "or choose another name.")
    _probe_writable(folder, out)
    claims.claim(out)                       # inside a command run: refused while another run writes it
    return out


def check_distinct(outputs: Dict[str, Optional[Path]], inputs: Dict[str, Optional[str]],
                   replaceable: Iterable[str] = (), overwrite: bool = False) -> None:
    """Refuse two outputs on one file, and an output that is an input of the same command.

    Parameters
    ----------
    outputs : dict of flag to Path or None
        The command's destinations (None: not given).
    inputs : dict of flag to path or None
        The command's input files.
    replaceable : iterable of str
        Input flags whose file the command may replace with ``overwrite`` (``--scene``).
    overwrite : bool
        ``--overwrite`` was given.
    """
    given = [(flag, Path(os.path.realpath(p))) for flag, p in outputs.items() if p is not None]
    for i, (flag, path) in enumerate(given):
        for other_flag, other in given[i + 1:]:
            if path == other:
                raise InputError(f"{flag} and {other_flag} name the same file '{path}'; give each its own name.")
    allowed = set(replaceable)
    for in_flag, in_path in inputs.items():
        if in_path is None:
            continue
        real = Path(os.path.realpath(in_path))
        for flag, path in given:
            if path == real and not (in_flag in allowed and overwrite):
                hint = " add --overwrite to replace it" if in_flag in allowed else " choose another name"
                raise InputError(f"{flag} '{path}' is also the {in_flag} input; to write over it{hint}.")


def _no_point(name: str) -> None:
    """A fault point that is not one (a cache's write, module rule 7)."""


def _keeps_backup(path: Path) -> bool:
    return path.name.lower().endswith(BACKUP_SUFFIXES)


def backup_path(path: Path) -> Path:
    """Where an existing file is kept when replaced (``X.blend`` → ``X.blend1``)."""
    return path.with_name(path.name + "1")


def _keep_backup(dest: Path) -> None:
    """Copy ``dest`` to its backup name while ``dest`` stays in place (a hard link, else a copy, under a
    temporary name, then renamed): a run killed between this and the rename of the new file leaves the old
    file under its own name, never nothing (moving it aside first did)."""
    keep = temp_name(dest)
    try:
        try:
            os.link(dest, keep)
        except OSError:                     # no hard links here (FAT, some network shares): a copy
            shutil.copy2(dest, keep)
        os.replace(keep, backup_path(dest))
    finally:
        if keep.exists():
            os.remove(keep)


class Staged:
    """Temporary files next to each destination, renamed into place together (all or nothing).

    Use as a context manager::

        with Staged([blend, video]) as staged:
            save(staged.temp(blend)); render(staged.temp(video))
            staged.commit()                 # only now do the destinations change

    Leaving the block without :meth:`commit` (an exception, Ctrl-C) deletes every temporary file.
    """

    def __init__(self, destinations: Iterable[Path], fault_points: bool = True):
        self._temps: Dict[Path, Path] = {}
        self._point = faults.point if fault_points else _no_point
        for dest in destinations:
            dest = Path(dest)
            if is_temp(dest):                       # already another Staged's temporary: written in place
                self._temps[dest] = dest            # (a nested temporary would escape its owner's sweep)
                continue
            sweep_leftovers(dest)
            self._temps[dest] = temp_name(dest)     # writers create it

    def __enter__(self) -> "Staged":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def temp(self, dest: Path) -> Path:
        """The temporary path to write ``dest``'s content to (asked for just before writing it)."""
        self._point("write")
        return self._temps[Path(dest)]

    def user_message(self, text: str) -> str:
        """``text`` with every temporary path replaced by its destination (for error messages)."""
        for dest, temp in self._temps.items():
            text = text.replace(str(temp), str(dest)).replace(temp.name, dest.name)
        return text

    def commit(self) -> None:
        """Move every written temporary file to its destination (old ``.blend`` kept as ``.blend1``)."""
        missing = [dest for dest, temp in self._temps.items() if not temp.is_file()]
        if missing:
            raise InputError(f"'{missing[0]}' was not written; nothing was changed.")
        self._point("commit")
        for dest, temp in self._temps.items():
            if temp == dest:
                continue                            # written in place (an outer Staged renames it)
            if dest.exists() and _keeps_backup(dest):
                _keep_backup(dest)
            self._point("rename")
            os.replace(temp, dest)
            self._point("renamed")
        self._temps.clear()

    def discard(self) -> None:
        """Delete the temporary files that were not committed (and Blender's ``@`` / ``1`` twins of them)."""
        for temp in self._temps.values():
            for leftover in (temp, temp.with_name(temp.name + "1"), temp.with_name(temp.name + "@")):
                try:
                    os.remove(leftover)
                except FileNotFoundError:
                    pass
        self._temps.clear()


def write_exact(dest: Path, write, fault_points: bool = True) -> Path:
    """Write one file through :class:`Staged`: ``write(temp_path)`` then rename to ``dest``.

    OSError while writing becomes an InputError naming ``dest`` (never the temporary file).
    ``fault_points=False`` for a cache's file (module rule 7).
    """
    with Staged([dest], fault_points) as staged:
        try:
            write(staged.temp(dest))
            staged._point("written")
        except OSError as exc:
            raise InputError(f"cannot write '{dest}': {exc.strerror or exc}.") from None
        except VocaError as exc:
            raise type(exc)(staged.user_message(str(exc))) from None
        try:
            staged.commit()
        except OSError as exc:              # the rename itself (a folder in the way, a full disk's backup copy)
            raise InputError(f"cannot write '{dest}': {staged.user_message(exc.strerror or str(exc))}.") from None
    return dest


def promote(kept: Path, dest: Path) -> Path:
    """Rename a finished file the caller grew under a name of its own (``kept``: a resumable download's
    ``.NAME.part``, which a :class:`Staged` temporary could not be, since a killed run's must stay for the
    next run to resume) to ``dest`` in one step: ``dest`` holds the old file or the new one at every
    instant. Fault points ``rename`` / ``renamed``; an OSError becomes an InputError naming ``dest``."""
    faults.point("rename")
    try:
        os.replace(kept, dest)
    except OSError as exc:
        raise InputError(f"cannot write '{dest}': {exc.strerror or exc}.") from None
    faults.point("renamed")
    return dest


def _holds_files(folder: Path) -> bool:
    """``folder`` is a folder with anything in it but temporaries (a live run's staging, a leftover)."""
    return folder.is_dir() and any(not is_temp(p) for p in folder.iterdir())


class StagedFolder:
    """A folder of files written under a temporary name and put at ``dest`` by :meth:`commit` (module rule 8).

    Use as a context manager::

        with StagedFolder(folder) as staged:
            for i, frame in enumerate(frames): write_obj(staged.temp() / f"f_{i}.obj", frame)
            staged.commit(remove=lambda name: name.endswith(".obj"))   # only now does ``folder`` change

    It is staged beside ``dest`` (``temp_name(dest)``) when ``dest`` is absent or empty, so that the commit
    is one rename; inside ``dest`` (same name) when it already holds files, so that they move in on the
    same file system. Leaving the block without :meth:`commit` (an exception, Ctrl-C) removes the
    temporary folder; an ``OSError`` there becomes an :class:`InputError` naming ``dest``, never the
    temporary. What a killed run left is removed by the next one (:func:`sweep_leftovers`). Flat folders
    only: files, no subfolders.
    """

    def __init__(self, dest: Path, fault_points: bool = True):
        self.dest = Path(dest)
        self._point = faults.point if fault_points else _no_point
        self._temp: Optional[Path] = None           # (an error before it is chosen names only dest)
        try:
            sweep_leftovers(self.dest)
            temp = temp_name(self.dest)
            self._temp = self.dest / temp.name if _holds_files(self.dest) else temp
            os.mkdir(self._temp)
        except OSError as exc:
            raise self._error(exc) from None

    def __enter__(self) -> "StagedFolder":
        return self

    def __exit__(self, kind, value, trace) -> None:
        self.discard()
        if isinstance(value, OSError) and self._about_output(value):
            raise self._error(value) from None          # (an input's read error passes as it is: it names it)
        if isinstance(value, VocaError) and str(self._temp) in str(value):
            raise type(value)(self._message(str(value))) from None

    def temp(self) -> Path:
        """The temporary folder to write the files in (asked for just before writing them)."""
        self._point("write")
        return self._temp

    def _about_output(self, exc: OSError) -> bool:
        """Whether ``exc`` is about what is written here: it names no file (a write's error: a full disk) or a
        file in the temporary folder or the destination."""
        names = [n for n in (exc.filename, exc.filename2) if n is not None]
        places = [str(p) for p in (self._temp, self.dest) if p is not None]
        return not names or any(os.fspath(n).startswith(tuple(places)) for n in names)

    def _message(self, text: str) -> str:
        return text.replace(str(self._temp), str(self.dest)) if self._temp is not None else text

    def _error(self, exc: OSError) -> InputError:
        return InputError(f"cannot write '{self.dest}': {self._message(exc.strerror or str(exc))}. Nothing was "
                          "changed there; free some space or fix the folder's permissions, or choose another.")

    def commit(self, replace: Callable[[str], bool] = lambda name: True,
               remove: Callable[[str], bool] = lambda name: False) -> None:
        """Put the written files at ``dest``.

        ``dest`` absent or empty: the temporary folder is renamed to it, one step (a reader finds no folder
        or the whole new one). ``dest`` holding files (also when another writer filled it meanwhile): each
        new file is renamed into it, in name order, over an existing one only where ``replace(name)``;
        then the old files that ``remove(name)`` selects and the new folder lacks are deleted. Every file
        is the old one or the new one at every instant; files neither replaced nor removed are untouched.
        """
        self._point("commit")
        merging = self._temp.parent == self.dest
        try:
            if merging or not self._rename_whole():
                merging = True
                self._merge(replace, remove)
        except OSError as exc:
            if not merging:
                raise self._error(exc) from None
            raise InputError(f"cannot write '{self.dest}': {self._message(exc.strerror or str(exc))}. Some of its "
                             "files may be new and the others old (each is whole); run again to complete it, "
                             "after freeing some space or fixing the folder's permissions.") from None
        self.discard()

    def _rename_whole(self) -> bool:
        """Rename the staged folder to ``dest``; False when ``dest`` holds files (then merged)."""
        self._point("rename")
        try:
            os.replace(self._temp, self.dest)        # POSIX: over an absent or empty folder, atomically
        except OSError:
            if _holds_files(self.dest):
                return False
            if not self.dest.is_dir():
                raise
            os.rmdir(self.dest)                      # Windows renames no folder over another, empty or not
            os.rename(self._temp, self.dest)
        self._point("renamed")
        return True

    def _merge(self, replace: Callable[[str], bool], remove: Callable[[str], bool]) -> None:
        names = sorted(p.name for p in self._temp.iterdir())
        for name in names:
            if os.path.lexists(self.dest / name) and not replace(name):
                continue                             # the caller's rule keeps the existing file
            self._point("rename")
            os.replace(self._temp / name, self.dest / name)
            self._point("renamed")
        new = set(names)
        for old in sorted(os.listdir(self.dest)):
            if old not in new and not is_temp(Path(old)) and remove(old):
                os.remove(self.dest / old)

    def discard(self) -> None:
        """Remove the temporary folder (all of it after a commit that kept some files, nothing once renamed)."""
        if os.path.isdir(self._temp) and not os.path.islink(self._temp):
            shutil.rmtree(self._temp, ignore_errors=True)
