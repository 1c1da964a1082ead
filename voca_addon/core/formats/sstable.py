"""LevelDB-style sorted string tables (SSTable), the container of a TensorFlow checkpoint ``.index``.

Layout (https://github.com/google/leveldb/blob/main/doc/table_format.md, TensorFlow's
``tensorflow/core/lib/io/table*`` follows it):

- data blocks: entries ``varint shared, varint unshared, varint value_len, key[shared:], value``
  (keys prefix-compressed against the previous key, fully stored every ``restart interval``),
  then a uint32 restart-offset array and its uint32 length;
- every block is followed by a 5-byte trailer: compression type (0 = none, 1 = snappy) and the
  masked CRC-32C of block contents + type byte;
- a metaindex block (empty here), an index block mapping a separator key >= every key of a data
  block to that block's ``BlockHandle`` (varint offset, varint size);
- a 48-byte footer: metaindex and index handles padded to 40 bytes, then magic
  0xdb4775248b80fb57 (fixed64, little-endian).

Contract: stdlib + numpy (through :mod:`.crc32c`) only; works on bytes in memory, no file I/O.
Malformed tables raise :class:`TableError` (a ``ValueError``) with the reason; callers name the file.
Blocks compressed with snappy are refused (TensorFlow writes checkpoint indexes uncompressed).
"""
import struct
from typing import Iterator, List, Tuple

from . import protowire as pw
from .crc32c import crc32c, mask, unmask

TABLE_MAGIC = 0xDB4775248B80FB57
MAGIC_SIZE = 8  # bytes
FOOTER_SIZE = 48  # bytes: two BlockHandles padded to 40 bytes + magic
HANDLES_SIZE = FOOTER_SIZE - MAGIC_SIZE
BLOCK_TRAILER_SIZE = 5  # compression type (1) + masked crc32c (4)
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
BLOCK_SIZE = 256 * 1024  # bytes of entries per data block (TensorFlow's default)
RESTART_INTERVAL = 16  # keys between fully stored keys in a data block
INDEX_RESTART_INTERVAL = 1
UINT32_SIZE = 4
MAX_BYTE = 0xFF

Item = Tuple[bytes, bytes]


class TableError(ValueError):
    """The bytes are not a readable SSTable; the message says why."""


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
def _block_at(data: bytes, handle: bytes) -> bytes:
    """Contents of the block a BlockHandle points at, after checking its trailer."""
    offset, pos = pw.read_varint(handle, 0)
    size, _ = pw.read_varint(handle, pos)
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(data):
        raise TableError(f"it is truncated (a block ends at byte {end + BLOCK_TRAILER_SIZE}, "
                         f"the file has {len(data)} bytes)")
    stored = unmask(int.from_bytes(data[end + 1:end + BLOCK_TRAILER_SIZE], "little"))
    if stored != crc32c(data[offset:end + 1]):
        raise TableError(f"it is corrupt (checksum mismatch in the block at byte {offset})")
    kind = data[end]
    if kind == SNAPPY_COMPRESSION:
        raise TableError("its blocks are snappy-compressed, which this add-on cannot read; re-save it "
                         "with TensorFlow's Saver (which writes uncompressed indexes)")
    if kind != NO_COMPRESSION:
        raise TableError(f"its blocks use an unknown compression type ({kind})")
    return data[offset:end]


def block_entries(block: bytes) -> Iterator[Item]:
    """(key, value) pairs of one block's contents, in order.

    Raises
    ------
    TableError, pw.ProtoDecodeError
        The block is malformed.
    """
    if len(block) < UINT32_SIZE:
        raise TableError("a block is shorter than its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - UINT32_SIZE)[0]
    limit = len(block) - UINT32_SIZE * (num_restarts + 1)
    if limit < 0:
        raise TableError("a block's restart array is larger than the block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = pw.read_varint(block, pos, limit)
        unshared, pos = pw.read_varint(block, pos, limit)
        value_len, pos = pw.read_varint(block, pos, limit)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise TableError(f"a table entry at byte {pos} overruns its block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_table(data: bytes) -> List[Item]:
    """Every (key, value) pair of an SSTable, in key order.

    Parameters
    ----------
    data : bytes
        The whole table file.

    Raises
    ------
    TableError
        Not a table (no magic number), truncated, corrupt (block checksum), compressed blocks.
    """
    if len(data) < FOOTER_SIZE or int.from_bytes(data[-MAGIC_SIZE:], "little") != TABLE_MAGIC:
        raise TableError("it has no table magic number at its end")
    footer = data[-FOOTER_SIZE:-MAGIC_SIZE]
    try:
        _, pos = pw.read_varint(footer, pw.read_varint(footer, 0)[1])  # skip the metaindex handle
        items: List[Item] = []
        for _, handle in block_entries(_block_at(data, footer[pos:])):
            items.extend(block_entries(_block_at(data, handle)))
    except pw.ProtoDecodeError as exc:
        raise TableError(f"it is damaged ({exc})") from None
    return items


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
class _BlockBuilder:
    """Accumulates sorted (key, value) pairs into one block."""

    def __init__(self, restart_interval: int = RESTART_INTERVAL):
        self.restart_interval = restart_interval
        self.buf = bytearray()
        self.restarts = [0]
        self.since_restart = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.since_restart == self.restart_interval:
            self.restarts.append(len(self.buf))
            self.since_restart = 0
        else:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        self.buf += pw.encode_varint(shared) + pw.encode_varint(len(key) - shared)
        self.buf += pw.encode_varint(len(value)) + key[shared:] + value
        self.last_key = key
        self.since_restart += 1

    def size(self) -> int:
        return len(self.buf) + UINT32_SIZE * (len(self.restarts) + 1)

    def finish(self) -> bytes:
        count = len(self.restarts)
        return bytes(self.buf) + struct.pack(f"<{count + 1}I", *self.restarts, count)


def _append_block(out: bytearray, contents: bytes) -> bytes:
    """Append a block and its trailer to ``out``; return its encoded BlockHandle."""
    offset = len(out)
    out += contents + bytes([NO_COMPRESSION])
    out += mask(crc32c(out[offset:])).to_bytes(UINT32_SIZE, "little")
    return pw.encode_varint(offset) + pw.encode_varint(len(contents))


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key k with start <= k < limit (LevelDB's bytewise ``FindShortestSeparator``)."""
    common = 0
    while common < min(len(start), len(limit)) and start[common] == limit[common]:
        common += 1
    if common < min(len(start), len(limit)):
        byte = start[common]
        if byte < MAX_BYTE and byte + 1 < limit[common]:
            return start[:common] + bytes([byte + 1])
    return start


def short_successor(key: bytes) -> bytes:
    """A short key >= ``key`` (LevelDB's bytewise ``FindShortSuccessor``)."""
    for i, byte in enumerate(key):
        if byte != MAX_BYTE:
            return key[:i] + bytes([byte + 1])
    return key


def build_table(items: List[Item], block_size: int = BLOCK_SIZE) -> bytes:
    """An SSTable holding ``items``, laid out as TensorFlow's table builder does.

    Parameters
    ----------
    items : list of (bytes, bytes)
        Sorted by key (bytewise), keys unique.
    block_size : int
        A data block is closed once its entries reach this many bytes.
    """
    out, index = bytearray(), _BlockBuilder(INDEX_RESTART_INTERVAL)
    block = _BlockBuilder()
    for i, (key, value) in enumerate(items):
        block.add(key, value)
        if block.size() >= block_size or i == len(items) - 1:
            last = i == len(items) - 1
            separator = short_successor(key) if last else shortest_separator(key, items[i + 1][0])
            index.add(separator, _append_block(out, block.finish()))
            block = _BlockBuilder()
    handles = _append_block(out, _BlockBuilder().finish())  # empty metaindex
    handles += _append_block(out, index.finish())
    return bytes(out) + handles.ljust(HANDLES_SIZE, b"\0") + TABLE_MAGIC.to_bytes(MAGIC_SIZE, "little")
