"""Protocol Buffers wire format: a tiny, schema-free decoder and the few encoders the writers need.

TensorFlow stores graphs (``.pb``) and checkpoint index entries as protobuf messages. This module
knows only the wire format (https://protobuf.dev/programming-guides/encoding/), no schema: callers
(:mod:`.graphdef`, :mod:`.tfbundle`) name the fields they want.

Contract
--------
- Imports only the standard library and numpy; never ``bpy`` or ``tensorflow``.
- Decoding never copies length-delimited payloads: pass a ``memoryview`` (for instance of an
  ``mmap``) and every payload comes back as a ``memoryview`` slice of it. Large tensors can then be
  wrapped with ``np.frombuffer`` without a copy.
- Malformed input raises :class:`ProtoDecodeError` (a ``ValueError``). It is a programmer-facing
  error: readers catch it and raise a :class:`~voca_addon.core.errors.ModelFileError` naming the file.
- Thread-safe (no shared state).
"""
import struct
from typing import Dict, Iterator, List, Tuple, Union

import numpy as np

# Wire types (the low 3 bits of a field key).
VARINT = 0
FIXED64 = 1
LEN = 2
START_GROUP = 3  # deprecated groups: not supported
END_GROUP = 4
FIXED32 = 5

MAX_VARINT_BYTES = 10  # a 64-bit value needs at most 10 groups of 7 bits
UINT64_LIMIT = 1 << 64
INT64_SIGN = 1 << 63
MAX_FIELD_NUMBER = (1 << 29) - 1

Buffer = Union[bytes, bytearray, memoryview]
Value = Union[int, memoryview, bytes]
Field = Tuple[int, int, Value]


class ProtoDecodeError(ValueError):
    """The bytes are not a well-formed protobuf message."""


# --------------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------------
def read_varint(buf: Buffer, pos: int, end: int = -1) -> Tuple[int, int]:
    """Decode one base-128 varint.

    Parameters
    ----------
    buf : bytes-like
        Whole message buffer (indexing must return ints: bytes, bytearray or a 'B' memoryview).
    pos : int
        Offset of the varint's first byte.
    end : int
        Offset past the last byte that may be read; -1 means ``len(buf)``.

    Returns
    -------
    value, new_pos : int, int
        The unsigned value (up to 64 bits) and the offset just past the varint.
    """
    if end < 0:
        end = len(buf)
    if pos < end and buf[pos] < 0x80:  # fast path: most keys and lengths are one byte
        return buf[pos], pos + 1
    result = 0
    shift = 0
    for i in range(pos, min(pos + MAX_VARINT_BYTES, end)):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (UINT64_LIMIT - 1), i + 1
        shift += 7
    if end - pos < MAX_VARINT_BYTES:
        raise ProtoDecodeError(f"varint at byte {pos} runs past the end of the data (byte {end})")
    raise ProtoDecodeError(f"varint at byte {pos} is longer than {MAX_VARINT_BYTES} bytes")


def iter_fields(buf: Buffer, start: int = 0, end: int = -1) -> Iterator[Field]:
    """Iterate over the fields of one message, in wire order.

    Parameters
    ----------
    buf : bytes-like
        Buffer holding the message; pass a ``memoryview`` to get zero-copy payloads.
    start, end : int
        Byte range of the message inside ``buf`` (``end`` -1 means ``len(buf)``).

    Yields
    ------
    (field_number, wire_type, value)
        ``value`` is an int for VARINT, FIXED64 and FIXED32 (raw unsigned bits) and a slice of
        ``buf`` (a memoryview when ``buf`` is one) for LEN.

    Raises
    ------
    ProtoDecodeError
        Truncated data, a field number of 0, groups or an unknown wire type.
    """
    if end < 0:
        end = len(buf)
    if end > len(buf):
        raise ProtoDecodeError(f"message ends at byte {end} but the data has {len(buf)} bytes")
    pos = start
    while pos < end:
        key_pos = pos
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > MAX_FIELD_NUMBER:
            raise ProtoDecodeError(f"invalid field number {number} at byte {key_pos}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
        elif wire == LEN:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise ProtoDecodeError(
                    f"field {number} at byte {key_pos} needs {length} bytes but only {end - pos} remain "
                    "(truncated?)")
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if width > end - pos:
                raise ProtoDecodeError(f"fixed-width field {number} at byte {key_pos} is cut off")
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        else:
            raise ProtoDecodeError(f"unsupported wire type {wire} (field {number}) at byte {key_pos}")
        yield number, wire, value


def parse(buf: Buffer, start: int = 0, end: int = -1) -> Dict[int, List[Value]]:
    """Collect a message's fields by number: ``{field_number: [value, ...]}`` in wire order.

    Values are as in :func:`iter_fields`. A field that is not repeated should use its last value
    (protobuf's "last one wins" rule); :func:`last` does that.
    """
    fields: Dict[int, List[Value]] = {}
    for number, _, value in iter_fields(buf, start, end):
        fields.setdefault(number, []).append(value)
    return fields


def last(fields: Dict[int, List[Value]], number: int, default=None):
    """The value of a singular field (the last occurrence wins), or ``default`` when absent."""
    values = fields.get(number)
    return values[-1] if values else default


def to_signed64(value: int) -> int:
    """Reinterpret a 64-bit unsigned varint as int64 (how int32/int64 negatives are encoded)."""
    return value - UINT64_LIMIT if value >= INT64_SIGN else value


def zigzag_decode(value: int) -> int:
    """Decode a sint32/sint64 (ZigZag) varint."""
    return (value >> 1) ^ -(value & 1)


def fixed32_to_float(value: int) -> float:
    """Reinterpret the raw bits of a FIXED32 field as an IEEE float32."""
    return struct.unpack("<f", value.to_bytes(4, "little"))[0]


def fixed64_to_double(value: int) -> float:
    """Reinterpret the raw bits of a FIXED64 field as an IEEE float64."""
    return struct.unpack("<d", value.to_bytes(8, "little"))[0]


def to_str(value: Buffer) -> str:
    """Decode a string field (UTF-8). Raises :class:`ProtoDecodeError` on invalid UTF-8."""
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtoDecodeError(f"string field is not valid UTF-8: {exc}") from None


def unpack_varints(values: List[Value], signed: bool = True) -> List[int]:
    """Flatten a repeated varint field that may be packed (LEN payloads) or not (ints).

    Parameters
    ----------
    values : list
        The field's values as returned by :func:`parse` (packed and unpacked may be mixed).
    signed : bool
        Reinterpret each value as int64 (int32/int64/enum fields); False keeps uint64.
    """
    out: List[int] = []
    for value in values:
        if isinstance(value, int):
            out.append(value)
            continue
        pos, end = 0, len(value)
        while pos < end:
            item, pos = read_varint(value, pos, end)
            out.append(item)
    return [to_signed64(v) for v in out] if signed else out


def unpack_fixed(values: List[Value], dtype: str) -> np.ndarray:
    """Flatten a repeated fixed-width field (packed LEN payloads or single FIXED32/64 ints).

    Parameters
    ----------
    values : list
        The field's values as returned by :func:`parse`.
    dtype : str
        Little-endian numpy dtype of one element, e.g. ``'<f4'``, ``'<f8'``, ``'<u4'``.

    Returns
    -------
    np.ndarray, shape (n,)
        A zero-copy view when the field is a single packed payload, else a new array.
    """
    dt = np.dtype(dtype)
    parts = []
    for value in values:
        if isinstance(value, int):
            parts.append(np.frombuffer(value.to_bytes(dt.itemsize, "little"), dtype=dt))
        elif len(value) % dt.itemsize:
            raise ProtoDecodeError(f"packed field of {len(value)} bytes is not a multiple of {dt.itemsize}")
        else:
            parts.append(np.frombuffer(value, dtype=dt))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dt)


# --------------------------------------------------------------------------------------------------
# encoding (what the checkpoint writer needs)
# --------------------------------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    """Encode an int as a base-128 varint; negatives as 64-bit two's complement (10 bytes)."""
    if value < 0:
        value += UINT64_LIMIT
    if not 0 <= value < UINT64_LIMIT:
        raise ValueError(f"varint value {value} does not fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return encode_varint((number << 3) | wire)


def encode_varint_field(number: int, value: int) -> bytes:
    """Encode a VARINT field (int32, int64, uint64, bool, enum)."""
    return _key(number, VARINT) + encode_varint(int(value))


def encode_len_field(number: int, payload: Buffer) -> bytes:
    """Encode a LEN field (bytes, string, embedded message, packed repeated)."""
    return _key(number, LEN) + encode_varint(len(payload)) + bytes(payload)


def encode_fixed32_field(number: int, value: int) -> bytes:
    """Encode a FIXED32 field from its raw unsigned 32 bits."""
    return _key(number, FIXED32) + (int(value) & 0xFFFFFFFF).to_bytes(4, "little")


def encode_fixed64_field(number: int, value: int) -> bytes:
    """Encode a FIXED64 field from its raw unsigned 64 bits."""
    return _key(number, FIXED64) + (int(value) % UINT64_LIMIT).to_bytes(8, "little")
