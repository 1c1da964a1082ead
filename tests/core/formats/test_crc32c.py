"""crc32c: published CRC-32C check values and a bit-by-bit reference on random data."""
import numpy as np
import pytest

from voca_addon.core.formats.crc32c import crc32c, mask, unmask

CASTAGNOLI_REFLECTED = 0x82F63B78


def _bitwise_crc32c(data: bytes) -> int:
    """Textbook bit-at-a-time CRC-32C (independent of the table/lane code under test)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (CASTAGNOLI_REFLECTED if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("data, expected", [
    (b"123456789", 0xE3069283),  # the standard check value
    (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4 test vectors
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"", 0),
])
def test_crc32c_known_values(data, expected):
    assert crc32c(data) == expected


@pytest.mark.parametrize("size", [1, 63, 64, 65, 1000, 4099, 20011])
def test_crc32c_matches_bitwise_reference(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == _bitwise_crc32c(data)


def test_crc32c_extend_equals_whole():
    data = np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    assert crc32c(data[31_000:], crc32c(data[:31_000])) == crc32c(data)
    assert crc32c(data[5:], crc32c(data[:5])) == crc32c(data)


def test_crc32c_reads_arrays_as_their_bytes():
    arr = np.arange(1000, dtype="<f4").reshape(10, 100)
    assert crc32c(arr) == crc32c(arr.tobytes())
    assert crc32c(arr.T) == crc32c(np.ascontiguousarray(arr.T).tobytes())


def test_crc32c_mask_round_trips_and_differs():
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert unmask(mask(value)) == value
    assert mask(0xE3069283) != 0xE3069283
