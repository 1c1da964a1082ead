"""sstable: LevelDB-style tables round trip, across many blocks, and refuse damaged input."""
import pytest

from voca_addon.core.formats import protowire as pw
from voca_addon.core.formats import sstable
from voca_addon.core.formats.crc32c import crc32c, mask


def _items(n: int):
    return sorted((f"VOCA/layer{i:04d}/weights".encode(), bytes([i % 256]) * (i % 7)) for i in range(n))


@pytest.mark.parametrize("block_size", [1, 64, 4096, sstable.BLOCK_SIZE])
def test_sstable_round_trip_any_block_size(block_size):
    items = _items(300)
    assert sstable.read_table(sstable.build_table(items, block_size=block_size)) == items


def _data_block_count(table: bytes) -> int:
    footer = table[-sstable.FOOTER_SIZE:]
    _, pos = pw.read_varint(footer, pw.read_varint(footer, 0)[1])  # skip the metaindex handle
    index = sstable._block_at(table, footer[pos:])
    return len(list(sstable.block_entries(index)))


def test_sstable_small_blocks_make_several_data_blocks():
    assert _data_block_count(sstable.build_table(_items(300))) == 1
    assert _data_block_count(sstable.build_table(_items(300), block_size=1)) == 300  # one key each
    assert 10 < _data_block_count(sstable.build_table(_items(300), block_size=64)) < 300


def test_sstable_empty_table_round_trips():
    assert sstable.read_table(sstable.build_table([])) == []


@pytest.mark.parametrize("start, limit, expected", [
    (b"abc1", b"abd", b"abc1"),  # bytes differ by one: no shorter key fits
    (b"abc", b"abz", b"abd"),
    (b"ab", b"abc", b"ab"),  # a prefix: unchanged
    (b"a\xff\x01", b"b", b"a\xff\x01"),
])
def test_sstable_shortest_separator_is_between(start, limit, expected):
    sep = sstable.shortest_separator(start, limit)
    assert sep == expected and start <= sep < limit


def test_sstable_short_successor():
    assert sstable.short_successor(b"strs") == b"t"
    assert sstable.short_successor(b"\xff\xffa") == b"\xff\xffb"
    assert sstable.short_successor(b"\xff") == b"\xff"


def test_sstable_bad_magic_is_refused():
    with pytest.raises(sstable.TableError, match="magic"):
        sstable.read_table(b"x" * 100)


def test_sstable_corrupt_block_is_refused():
    data = bytearray(sstable.build_table(_items(10)))
    data[3] ^= 0x40
    with pytest.raises(sstable.TableError, match="checksum"):
        sstable.read_table(bytes(data))


def test_sstable_snappy_block_is_refused_with_advice():
    contents = sstable._BlockBuilder().finish()
    block = contents + bytes([sstable.SNAPPY_COMPRESSION])
    data = bytearray(block + mask(crc32c(block)).to_bytes(4, "little"))
    handle = bytes([0, len(contents)])
    footer = (handle + handle).ljust(sstable.HANDLES_SIZE, b"\0")
    data += footer + sstable.TABLE_MAGIC.to_bytes(8, "little")
    with pytest.raises(sstable.TableError, match="snappy.*re-save"):
        sstable.read_table(bytes(data))
