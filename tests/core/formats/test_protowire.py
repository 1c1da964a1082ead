"""protowire: decoding checked against messages serialised by the real ``google.protobuf`` package."""
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, wrappers_pb2

from voca_addon.core.formats import protowire as pw


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**32, 2**63 - 1])
def test_protowire_varint_matches_protobuf(value):
    data = wrappers_pb2.UInt64Value(value=value).SerializeToString()
    fields = list(pw.iter_fields(data))
    assert fields == ([] if value == 0 else [(1, pw.VARINT, value)])  # proto3 omits defaults
    assert pw.encode_varint_field(1, value) == data or value == 0


@pytest.mark.parametrize("value", [-1, -5, -(2**31), -(2**63)])
def test_protowire_negative_int64_is_ten_byte_twos_complement(value):
    data = wrappers_pb2.Int64Value(value=value).SerializeToString()
    [(number, wire, raw)] = list(pw.iter_fields(data))
    assert (number, wire, pw.to_signed64(raw)) == (1, pw.VARINT, value)
    assert len(data) == 11
    assert pw.encode_varint_field(1, value) == data


def test_protowire_fixed_width_floats_match_protobuf():
    f32 = wrappers_pb2.FloatValue(value=-1.25).SerializeToString()
    f64 = wrappers_pb2.DoubleValue(value=3.141592653589793).SerializeToString()
    [(_, wire32, raw32)] = list(pw.iter_fields(f32))
    [(_, wire64, raw64)] = list(pw.iter_fields(f64))
    assert (wire32, pw.fixed32_to_float(raw32)) == (pw.FIXED32, -1.25)
    assert (wire64, pw.fixed64_to_double(raw64)) == (pw.FIXED64, 3.141592653589793)


def test_protowire_nested_message_and_strings_match_protobuf():
    msg = descriptor_pb2.FileDescriptorProto(name="voca.proto", package="pkg")
    msg.message_type.add(name="Node").field.add(name="op", number=2, type=9, label=1)
    msg.message_type.add(name="Graph")
    fields = pw.parse(memoryview(msg.SerializeToString()))
    assert pw.to_str(pw.last(fields, 1)) == "voca.proto"
    assert pw.to_str(pw.last(fields, 2)) == "pkg"
    messages = [pw.parse(m) for m in fields[4]]
    assert [pw.to_str(pw.last(m, 1)) for m in messages] == ["Node", "Graph"]
    field = pw.parse(messages[0][2][0])
    assert (pw.to_str(pw.last(field, 1)), pw.last(field, 3), pw.last(field, 5)) == ("op", 2, 9)


def test_protowire_len_payloads_are_views_of_a_memoryview():
    data = bytearray(pw.encode_len_field(3, b"abcdef"))
    [(_, _, payload)] = list(pw.iter_fields(memoryview(data)))
    assert isinstance(payload, memoryview)
    data[-1] = ord("z")  # the view sees later changes: nothing was copied
    assert bytes(payload) == b"abcdez"


def test_protowire_packed_and_unpacked_repeated_varints_agree():
    loc = descriptor_pb2.SourceCodeInfo.Location(path=[4, 0, 300, 2**31 - 1])  # packed int32
    packed = pw.parse(loc.SerializeToString())[1]
    unpacked = b"".join(pw.encode_varint_field(1, v) for v in [4, 0, 300, 2**31 - 1])
    assert pw.unpack_varints(packed) == [4, 0, 300, 2**31 - 1]
    assert pw.unpack_varints(pw.parse(unpacked)[1]) == [4, 0, 300, 2**31 - 1]


def test_protowire_packed_floats_decode_without_copy():
    values = np.array([1.5, -2.0, 3.25], dtype="<f4")
    data = memoryview(pw.encode_len_field(5, values.tobytes()))
    arr = pw.unpack_fixed(pw.parse(data)[5], "<f4")
    np.testing.assert_array_equal(arr, values)
    assert arr.base is not None and not arr.flags.owndata
    single = pw.parse(b"".join(pw.encode_fixed32_field(5, int(v)) for v in values.view("<u4")))
    np.testing.assert_array_equal(pw.unpack_fixed(single[5], "<f4"), values)


def test_protowire_zigzag_decodes_sint():
    assert [pw.zigzag_decode(v) for v in (0, 1, 2, 3, 4294967294, 4294967295)] == [
        0, -1, 1, -2, 2147483647, -2147483648]


@pytest.mark.parametrize("data, reason", [
    (b"\x08", "runs past the end"),  # varint key, value missing
    (b"\x08\xff\xff", "runs past the end"),  # unterminated varint
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\x12\x05abc", "needs 5 bytes"),  # length beyond the end
    (b"\x1d\x00\x00", "cut off"),  # fixed32 with 2 bytes
    (b"\x0b", "wire type 3"),  # start group
    (b"\x07\x00", "field number 0"),
])
def test_protowire_malformed_input_raises_decode_error(data, reason):
    with pytest.raises(pw.ProtoDecodeError, match=reason):
        list(pw.iter_fields(data))


def test_protowire_invalid_utf8_string_raises_decode_error():
    with pytest.raises(pw.ProtoDecodeError, match="UTF-8"):
        pw.to_str(b"\xff\xfe")
