"""``.npz`` files written and read member by member, large members in row blocks (bounded memory).

An ``.npz`` is a ZIP archive of ``.npy`` members (numpy's format: magic, a header giving dtype and shape,
then the raw C-order data). :class:`NpzWriter` writes such an archive with the standard library's
``zipfile`` (stored, ZIP64 so members may exceed 4 GiB), letting a member be filled block by block from
a generator: a [frames, 5023, 3] vertex array of an hour of speech (13 GB) never exists in memory. The
result is an ordinary ``.npz`` (``np.load`` reads it). :func:`iter_rows` reads a member back in blocks.

Writes go through a :class:`~voca_addon.core.outputs.Staged` of the destination: a hidden temporary file
beside it (what a killed run left there is removed first; a destination that is itself such a temporary
name, the temporary of an outer ``Staged`` write, is written in place), renamed over it only when the
archive is complete (:meth:`NpzWriter.commit`); on any error (a full disk, Ctrl-C) the temporary file is removed, so the
destination is either the old file or the whole new one, and the error names the destination. The
destination gets exactly the name given (``np.savez`` would append ``.npz``).

Contract: numpy + stdlib only; any thread.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Tuple

import numpy as np

from .. import faults
from ..errors import InputError
from ..outputs import Staged


class NpzWriter:
    """Write ``path`` as an ``.npz``, member by member; use as a context manager.

    ``with NpzWriter(out) as z: z.add("fps", 60.0); z.add_rows("vertices", (F, V, 3), np.float32, blocks)``
    commits on a normal exit and removes the partial file on an exception.
    """

    def __init__(self, path: os.PathLike):
        self.path = Path(path)
        self._staged = Staged([self.path])   # a Staged write's temporary is written in place (its owner sweeps it)
        try:
            self._zip = zipfile.ZipFile(self._staged.temp(self.path), "w", zipfile.ZIP_STORED, allowZip64=True)
        except OSError as exc:
            self._staged.discard()
            raise self._write_error(exc) from None

    def _write_error(self, exc: OSError) -> InputError:
        return InputError(f"cannot write '{self.path}': {exc.strerror or exc}. Nothing was written there; "
                          "free some space or choose another folder.")

    def add(self, name: str, array) -> None:
        """Add a whole (small) array as member ``name``."""
        value = np.asanyarray(array)
        self.add_rows(name, value.shape, value.dtype, [value] if value.ndim else [value.reshape(())])

    def add_rows(self, name: str, shape: Tuple[int, ...], dtype, blocks: Iterable[np.ndarray]) -> None:
        """Add member ``name`` of ``shape`` / ``dtype`` from consecutive row blocks [n_i, *shape[1:]].

        Raises
        ------
        InputError
            The blocks do not add up to ``shape`` (a programmer error surfaced clearly), or the file
            cannot be written (a full disk), naming the destination.
        """
        try:
            rows = self._write_member(name, shape, np.dtype(dtype), blocks)
        except OSError as exc:
            raise self._write_error(exc) from None
        if rows != (shape[0] if len(shape) else 1):
            raise InputError(f"npz member '{name}': {rows} rows written, {shape[0]} declared")

    def _write_member(self, name, shape, dtype, blocks) -> int:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        rows = 0
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as member:
            write_header = np.lib.format.write_array_header_1_0
            if len(repr(header)) > 65000:                                  # version 1.0 caps the header
                write_header = np.lib.format.write_array_header_2_0
            write_header(member, header)
            for block in blocks:
                block = np.ascontiguousarray(block, dtype)
                expected = tuple(shape[1:]) if len(shape) else ()
                if block.shape[1:] != expected and len(shape):
                    raise InputError(f"npz member '{name}': block {block.shape} does not fit {tuple(shape)}")
                rows += block.shape[0] if len(shape) else 1
                member.write(block.tobytes())
                faults.point("npz-block")
        return rows

    def commit(self) -> None:
        """Finish the archive and move it over the destination."""
        try:
            self._zip.close()
            self._staged.commit()
        except OSError as exc:
            self.abort()
            raise self._write_error(exc) from None
        except BaseException:               # Ctrl-C between the close and the rename: no partial file left
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the partial archive; the destination is untouched (also when closing it fails)."""
        try:
            self._zip.close()
        except (OSError, ValueError):
            # A full disk fails the central directory's write; without its file ZipFile.__del__ would try
            # again at garbage collection and print "Exception ignored in ZipFile.__del__".
            handle, self._zip.fp = self._zip.fp, None
            if handle is not None:
                try:
                    handle.close()
                except OSError:
                    pass
        self._staged.discard()

    def __enter__(self) -> "NpzWriter":
        return self

    def __exit__(self, kind, value, trace) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def iter_rows(path: os.PathLike, name: str, chunk: int) -> Iterator[np.ndarray]:
    """Member ``name`` of an ``.npz`` in blocks of at most ``chunk`` rows (C-order members only).

    Raises
    ------
    KeyError
        No such member. ``ValueError``: not an ``.npy`` member in C order.
    """
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
        shape, fortran, dtype = _read_header(member)
        if fortran or dtype.hasobject or len(shape) == 0:
            raise ValueError(f"member '{name}' is not a C-order numeric array")
        row_items = int(np.prod(shape[1:], dtype=np.int64))
        for start in range(0, shape[0], chunk):
            count = min(chunk, shape[0] - start)
            data = member.read(count * row_items * dtype.itemsize)
            if len(data) != count * row_items * dtype.itemsize:
                raise ValueError(f"member '{name}' is truncated")
            yield np.frombuffer(data, dtype).reshape((count,) + tuple(shape[1:]))


def member_shape(path: os.PathLike, name: str) -> Tuple[int, ...]:
    """Shape of member ``name`` without reading its data."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
        return tuple(_read_header(member)[0])


def _read_header(member) -> tuple:
    """(shape, fortran_order, dtype) of an open ``.npy`` stream, positioned at its data afterwards."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)
