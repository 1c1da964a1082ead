"""TensorFlow tensor-bundle checkpoints (``X.index`` + ``X.data-00000-of-00001``) without TensorFlow.

This is the format TF 1.x/2.x ``Saver`` writes and ``tf.train.load_checkpoint`` reads; the VOCA
release (``gstep_52280.model.*``) uses it.

- ``X.index`` is a LevelDB-style table (:mod:`.sstable`). Key ``""`` holds a ``BundleHeaderProto``
  (num_shards, endianness, version); every other key is a tensor name whose value is a
  ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, masked crc32c, slices).
- ``X.data-SSSSS-of-NNNNN`` holds the raw tensors: little-endian, C order, at the entry's offset;
  strings as varint lengths, a masked CRC of the lengths, then the bytes.

Contract
--------
- Imports only the standard library, numpy and this package; never ``bpy`` or ``tensorflow``.
- Problems with the files raise :class:`~..errors.ModelFileError` naming the file and what to do;
  bad arguments to :func:`write_checkpoint` raise :class:`~..errors.InputError`.
- Thread-safe: no shared mutable state. Arrays returned are writable copies owned by the caller.
- Not supported (clear errors): snappy-compressed index blocks, partitioned (sliced) variables,
  dtypes without a numpy equivalent (bfloat16, resource, variant).
"""
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

from . import protowire as pw
from . import sstable
from .crc32c import crc32c, mask
from ..errors import InputError, ModelFileError

HEADER_KEY = b""
SLICE_KEY_START = b"\x00"  # keys of partitioned-variable slices (TensorFlow's EncodeTensorNameSlice)
BUNDLE_VERSION = 1  # TensorFlow's kTensorBundleVersion
LITTLE_ENDIAN, BIG_ENDIAN = 0, 1
DT_STRING = 7
UINT32_MAX = 0xFFFFFFFF

DOWNLOAD_URL = "https://voca.is.tue.mpg.de"
DOWNLOAD_HINT = ("download the VOCA model from https://voca.is.tue.mpg.de and put all three "
                 "gstep_52280.model.* files in the same folder")

# TensorFlow DataType enum -> numpy dtype (little-endian). Quantised types read as their storage.
TF_DTYPES = {
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 7: "O", 8: "<c8", 9: "<i8",
    10: "?", 11: "i1", 12: "u1", 13: "<i4", 15: "<i2", 16: "<u2", 17: "<u2", 18: "<c16",
    19: "<f2", 22: "<u4", 23: "<u8",
}
_WRITABLE = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17, 18, 19, 22, 23}  # no quantised aliases
_NUMPY_TO_TF = {np.dtype(TF_DTYPES[k]): k for k in sorted(_WRITABLE, reverse=True)}
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in a bundle (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: np.dtype  # numpy dtype; object for strings
    shape: Tuple[int, ...]
    shard_id: int
    offset: int  # bytes into the data shard
    size: int  # bytes
    crc32c: int  # masked CRC-32C of the stored bytes, as in the file
    sliced: bool = False  # a partitioned variable (stored as slices; not supported)


def numpy_dtype(tf_enum: int) -> Optional[np.dtype]:
    """numpy dtype of a TensorFlow DataType enum value, or None when numpy has none."""
    code = TF_DTYPES.get(tf_enum)
    return None if code is None else np.dtype(code)


def decode_tensor_shape(buf: pw.Buffer) -> Optional[Tuple[int, ...]]:
    """Decode a ``TensorShapeProto``: dims as a tuple (-1 = unknown), None for unknown rank."""
    fields = pw.parse(buf)
    if pw.last(fields, 3, 0):
        return None
    return tuple(pw.to_signed64(pw.last(pw.parse(dim), 1, 0)) for dim in fields.get(2, []))


def normalize_prefix(path: PathLike) -> Path:
    """Checkpoint prefix from the prefix itself or from its ``.index``, ``.meta`` or ``.data-*`` file."""
    text = os.fspath(path)
    for suffix in (".index", ".meta"):
        if text.endswith(suffix):
            return Path(text[: -len(suffix)])
    return Path(_DATA_SUFFIX.sub("", text))


def shard_path(prefix: PathLike, shard_id: int, num_shards: int) -> Path:
    """Path of one data shard: ``<prefix>.data-00000-of-00001``."""
    prefix = normalize_prefix(prefix)
    return prefix.with_name(f"{prefix.name}.data-{shard_id:05d}-of-{num_shards:05d}")


def _index_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


# --------------------------------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------------------------------
def _read_items(path: Path) -> List[Tuple[bytes, bytes]]:
    """The index file's (key, value) pairs; ModelFileError when it is missing or not a table."""
    if not path.is_file():
        raise ModelFileError(f"the checkpoint index {path} is missing: {DOWNLOAD_HINT}")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"the checkpoint index {path} is empty (an interrupted download?): "
                             f"{DOWNLOAD_HINT}")
    try:
        return sstable.read_table(data)
    except sstable.TableError as exc:
        raise ModelFileError(f"{path} is not a readable TensorFlow checkpoint index: {exc}. "
                             f"Give the .index file of a checkpoint; {DOWNLOAD_HINT}") from None


def _decode_header(value: bytes, path: Path) -> Tuple[int, int]:
    """(num_shards, endianness) from a BundleHeaderProto."""
    fields = pw.parse(value)
    version = pw.parse(pw.last(fields, 3, b""))
    if pw.last(version, 2, 0) > BUNDLE_VERSION:
        raise ModelFileError(f"the checkpoint {path} needs a newer reader (bundle version "
                             f"{pw.last(version, 2)}); re-save it with TensorFlow 1.x/2.x Saver")
    return pw.last(fields, 1, 1), pw.last(fields, 2, LITTLE_ENDIAN)


def _decode_entry(name: str, value: bytes, big_endian: bool, path: Path) -> TensorEntry:
    fields = pw.parse(value)
    tf_dtype = pw.last(fields, 1, 0)
    dtype = numpy_dtype(tf_dtype)
    if dtype is None:
        raise ModelFileError(f"tensor '{name}' in {path} has a data type this add-on cannot read "
                             f"(TensorFlow DataType {tf_dtype})")
    if big_endian and dtype.kind != "O":
        dtype = dtype.newbyteorder(">")
    shape = decode_tensor_shape(pw.last(fields, 2, b"")) or ()
    return TensorEntry(name=name, dtype=dtype, shape=shape, shard_id=pw.last(fields, 3, 0),
                       offset=pw.last(fields, 4, 0), size=pw.last(fields, 5, 0),
                       crc32c=pw.last(fields, 6, 0), sliced=bool(fields.get(7)))


def _read_bundle(prefix: Path) -> Tuple[int, Dict[str, TensorEntry]]:
    path = _index_path(prefix)
    try:
        items = _read_items(path)
        if not items or items[0][0] != HEADER_KEY:
            raise pw.ProtoDecodeError("no bundle header (key '')")
        num_shards, endianness = _decode_header(items[0][1], path)
        entries = {}
        for key, value in items[1:]:
            if key.startswith(SLICE_KEY_START):
                continue  # a slice of a partitioned variable: reported through the full entry
            name = key.decode("utf-8", errors="strict")
            entries[name] = _decode_entry(name, value, endianness == BIG_ENDIAN, path)
    except (pw.ProtoDecodeError, UnicodeDecodeError, struct.error) as exc:
        raise ModelFileError(f"the checkpoint index {path} is damaged ({exc}): {DOWNLOAD_HINT}") from None
    return num_shards, entries


def read_index(prefix: PathLike) -> Dict[str, TensorEntry]:
    """Read a checkpoint's index: every tensor's name, dtype, shape and place in the data file.

    Parameters
    ----------
    prefix : path-like
        Checkpoint prefix (``.../gstep_52280.model``) or its ``.index`` / ``.meta`` / ``.data-*`` file.

    Returns
    -------
    dict of str to TensorEntry
        In key (byte) order. Needs only the ``.index`` file.
    """
    return _read_bundle(normalize_prefix(prefix))[1]


# --------------------------------------------------------------------------------------------------
# the data shards
# --------------------------------------------------------------------------------------------------
def _lengths_crc(lengths: List[int]) -> int:
    """CRC of string lengths as TensorFlow computes it: each as uint32 (uint64 when larger)."""
    crc = 0
    for length in lengths:
        crc = crc32c(struct.pack("<I" if length <= UINT32_MAX else "<Q", length), crc)
    return crc


def _decode_strings(raw: bytearray, entry: TensorEntry, verify: bool, path: Path) -> np.ndarray:
    """A string tensor: varint lengths, masked crc of the lengths, then the bytes."""
    count = int(np.prod(entry.shape, dtype=np.int64))
    lengths, pos = [], 0
    for _ in range(count):
        length, pos = pw.read_varint(raw, pos)
        lengths.append(length)
    crc = crc32c(raw[pos:pos + 4], _lengths_crc(lengths)) if verify else 0
    pos += 4
    out = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = bytes(raw[pos:pos + length])
        pos += length
    if pos != entry.size:
        raise pw.ProtoDecodeError(f"string tensor '{entry.name}' has {entry.size} bytes, "
                                  f"its lengths say {pos}")
    if verify:
        _check_crc(crc32c(raw[pos - sum(lengths):pos], crc), entry, path)
    return out.reshape(entry.shape)


def _check_crc(actual: int, entry: TensorEntry, path: Path) -> None:
    if mask(actual) != entry.crc32c:
        raise ModelFileError(f"{path}: the file is damaged (checksum mismatch in tensor '{entry.name}'): "
                             f"download it again from {DOWNLOAD_URL} and put all three gstep_52280.model.* "
                             "files in the same folder")


def _read_tensor(handle, entry: TensorEntry, verify: bool, path: Path) -> np.ndarray:
    if entry.sliced:
        raise ModelFileError(f"tensor '{entry.name}' in {path} is a partitioned variable, which this "
                             "add-on cannot read; save it unpartitioned")
    handle.seek(entry.offset)
    raw = bytearray(entry.size)
    if handle.readinto(raw) != entry.size:
        raise ModelFileError(f"the weights file {path} is truncated: {DOWNLOAD_HINT}")
    if entry.dtype.kind == "O":
        try:
            return _decode_strings(raw, entry, verify, path)
        except pw.ProtoDecodeError as exc:
            raise ModelFileError(f"the weights file {path} is damaged ({exc}): {DOWNLOAD_HINT}") from None
    count = int(np.prod(entry.shape, dtype=np.int64))
    if count * entry.dtype.itemsize != entry.size:
        raise ModelFileError(f"the checkpoint index says tensor '{entry.name}' {entry.shape} takes "
                             f"{entry.size} bytes, which does not match its type: {DOWNLOAD_HINT}")
    if verify:
        _check_crc(crc32c(raw), entry, path)
    return np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape)


def _open_shard(path: Path, shard_id: int, entries: Dict[str, TensorEntry]):
    """Open a data shard after checking it is as long as the index says (all its tensors)."""
    if not path.is_file():
        raise ModelFileError(f"the weights file {path} is missing: {DOWNLOAD_HINT}")
    expected = max(e.offset + e.size for e in entries.values() if e.shard_id == shard_id)
    actual = path.stat().st_size
    if actual < expected:
        raise ModelFileError(f"the weights file {path} is truncated: expected {expected:,} bytes, found "
                             f"{actual:,} (an interrupted download?): {DOWNLOAD_HINT}")
    return open(path, "rb")


def read_checkpoint(prefix: PathLike, names: Optional[Iterable[str]] = None,
                    verify: bool = False) -> Dict[str, np.ndarray]:
    """Read tensors from a checkpoint.

    Parameters
    ----------
    prefix : path-like
        Checkpoint prefix or any of its files (see :func:`read_index`).
    names : iterable of str, optional
        Tensors to read; all of them (strings included) when None.
    verify : bool
        Check each tensor's CRC-32C (about 0.1 s per 10 MB).

    Returns
    -------
    dict of str to np.ndarray
        Native-endian arrays with the stored dtype and shape (strings: object arrays of bytes).

    Raises
    ------
    ModelFileError
        Missing/damaged index, missing or truncated data shard, an unknown name, a bad checksum.
    """
    prefix = normalize_prefix(prefix)
    num_shards, entries = _read_bundle(prefix)
    wanted = list(entries) if names is None else list(names)
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise ModelFileError(f"the checkpoint {_index_path(prefix)} has no tensor(s) {missing}: is it a "
                             "VOCA model? " + DOWNLOAD_HINT)
    by_shard: Dict[int, List[TensorEntry]] = {}
    for name in wanted:
        by_shard.setdefault(entries[name].shard_id, []).append(entries[name])
    out = {}
    for shard_id, shard_entries in sorted(by_shard.items()):
        path = shard_path(prefix, shard_id, num_shards)
        with _open_shard(path, shard_id, entries) as handle:
            for entry in shard_entries:
                arr = _read_tensor(handle, entry, verify, path)
                out[entry.name] = arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
    return out


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
def _encode_shape(shape: Tuple[int, ...]) -> bytes:
    return b"".join(pw.encode_len_field(2, pw.encode_varint_field(1, d) if d else b"") for d in shape)


def _encode_entry(tf_dtype: int, shape: Tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    out = pw.encode_varint_field(1, tf_dtype) + pw.encode_len_field(2, _encode_shape(shape))
    if offset:
        out += pw.encode_varint_field(4, offset)
    if size:
        out += pw.encode_varint_field(5, size)
    return out + pw.encode_fixed32_field(6, mask(crc))


def _tensor_bytes(name: str, value) -> Tuple[int, Tuple[int, ...], bytes, int]:
    """(tf dtype, shape, stored bytes, unmasked crc) of one tensor to write."""
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in arr.reshape(-1).tolist()]
        lengths = [len(v) for v in items]
        head = b"".join(pw.encode_varint(n) for n in lengths)
        length_crc = mask(_lengths_crc(lengths)).to_bytes(4, "little")
        payload = b"".join(items)
        crc = crc32c(payload, crc32c(length_crc, _lengths_crc(lengths)))
        return DT_STRING, arr.shape, head + length_crc + payload, crc
    tf_dtype = _NUMPY_TO_TF.get(arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype)
    if tf_dtype is None:
        raise InputError(f"cannot save tensor '{name}': numpy dtype {arr.dtype} has no TensorFlow equivalent")
    data = np.ascontiguousarray(arr, dtype=np.dtype(TF_DTYPES[tf_dtype])).tobytes()
    return tf_dtype, arr.shape, data, crc32c(data)


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """``chunks`` into ``path`` through :func:`voca_addon.core.outputs.write_exact` (temporary + rename)."""
    from .. import outputs

    def write(temp):
        with open(temp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
    outputs.write_exact(Path(path), write)


def write_checkpoint(prefix: PathLike, tensors: Dict[str, np.ndarray]) -> Path:
    """Write a single-shard checkpoint that TensorFlow's ``Saver`` / ``load_checkpoint`` accept.

    Parameters
    ----------
    prefix : path-like
        Checkpoint prefix (``.../model``); writes ``model.index`` and ``model.data-00000-of-00001``
        (each atomically, through a temporary file). The folder is created if needed.
    tensors : dict of str to array-like
        Name -> array. numpy numeric/bool dtypes TensorFlow knows; str/bytes arrays as strings.

    Returns
    -------
    Path
        The normalised prefix.

    Raises
    ------
    InputError
        An empty name or a dtype TensorFlow has no type for.
    """
    prefix = normalize_prefix(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in tensors:
        if not isinstance(name, str) or not name:
            raise InputError(f"cannot save a tensor named {name!r}: names must be non-empty strings")
        keys[name.encode("utf-8")] = name
    header = pw.encode_varint_field(1, 1) + pw.encode_len_field(3, pw.encode_varint_field(1, BUNDLE_VERSION))
    items, chunks, offset = [(HEADER_KEY, header)], [], 0
    for key in sorted(keys):
        tf_dtype, shape, data, crc = _tensor_bytes(keys[key], tensors[keys[key]])
        items.append((key, _encode_entry(tf_dtype, shape, offset, len(data), crc)))
        chunks.append(data)
        offset += len(data)
    _atomic_write(shard_path(prefix, 0, 1), chunks)
    _atomic_write(_index_path(prefix), [sstable.build_table(items)])
    return prefix
