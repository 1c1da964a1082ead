"""tfbundle: the real VOCA indexes, round trips with TensorFlow's own Saver/reader, clear errors."""
import os
import shutil

import numpy as np
import pytest

from voca_addon.core.formats import protowire as pw
from voca_addon.core.formats import sstable, tfbundle
from voca_addon.core.errors import InputError, ModelFileError

OFFICIAL_DATA_BYTES = 9_714_776
OFFICIAL_WEIGHTS = {
    "VOCA/SpeechEncoder/batch_norm/beta": (1,),
    "VOCA/SpeechEncoder/batch_norm/gamma": (1,),
    "VOCA/SpeechEncoder/batch_norm/moving_mean": (1,),
    "VOCA/SpeechEncoder/batch_norm/moving_variance": (1,),
    "VOCA/SpeechEncoder/conv1/weights": (3, 1, 37, 32), "VOCA/SpeechEncoder/conv1/biases": (32,),
    "VOCA/SpeechEncoder/conv2/weights": (3, 1, 32, 32), "VOCA/SpeechEncoder/conv2/biases": (32,),
    "VOCA/SpeechEncoder/conv3/weights": (3, 1, 32, 64), "VOCA/SpeechEncoder/conv3/biases": (64,),
    "VOCA/SpeechEncoder/conv4/weights": (3, 1, 64, 64), "VOCA/SpeechEncoder/conv4/biases": (64,),
    "VOCA/SpeechEncoder/fc1/weights": (72, 128), "VOCA/SpeechEncoder/fc1/biases": (128,),
    "VOCA/SpeechEncoder/fc2/weights": (128, 50), "VOCA/SpeechEncoder/fc2/biases": (50,),
    "VOCA/FlameExpressionLayer/expression_offset/weights": (50, 15069),
    "VOCA/FlameExpressionLayer/expression_offset/biases": (15069,),
}
DEEPSPEECH_CLASSES = 29

_RNG = np.random.default_rng(52280)
VALUES = {  # what the round-trip tests save: dtypes, ranks, edge values
    "VOCA/SpeechEncoder/conv1/weights": _RNG.standard_normal((3, 1, 37, 32)).astype(np.float32),
    "VOCA/beta1_power": np.float32(0.9),
    "VOCA/global_step": np.int32(52280),
    "counts": np.arange(-3, 4, dtype=np.int32),
    "big": np.array([[2**40, -(2**40), 7]], dtype=np.int64),
    "flags": np.array([True, False, True]),
    "doubles": np.array([[np.pi, -0.0], [1e300, -1e-300]]),
    "halves": np.array([1.5, -2.25, 65504.0], dtype=np.float16),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "names": np.array([b"FaceTalk_170725_00137_TA", b"", b"\xff\x00raw"], dtype=object),
}


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow", reason="TensorFlow (reference only) is not installed")


def _graph_with_variables(tf, values):
    graph = tf.Graph()
    with graph.as_default():
        variables = {n: tf.compat.v1.Variable(v, name=n, use_resource=False) for n, v in values.items()}
        saver = tf.compat.v1.train.Saver()
    return graph, variables, saver


@pytest.fixture(scope="module")
def tf_checkpoint(tf, tmp_path_factory):
    """A checkpoint of VALUES written by TensorFlow's v1 Saver."""
    graph, _, saver = _graph_with_variables(tf, VALUES)
    prefix = tmp_path_factory.mktemp("tf") / "model"
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        saver.save(sess, str(prefix), write_meta_graph=False)
    return prefix


def _blank(value) -> np.ndarray:
    value = np.asarray(value)
    return np.full_like(value, b"" if value.dtype == object else 0)


def _assert_same(actual: dict, expected: dict):
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        value = np.asarray(value)
        assert actual[name].dtype == value.dtype, name
        assert actual[name].shape == value.shape, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


# --------------------------------------------------------------------------------------------------
# real reference files
# --------------------------------------------------------------------------------------------------
def test_tfbundle_official_index_lists_the_release(shared_data):
    entries = tfbundle.read_index(shared_data / "voca_official" / "gstep_52280.model.index")
    assert len(entries) == 53
    for name, shape in OFFICIAL_WEIGHTS.items():
        assert (entries[name].shape, entries[name].dtype) == (shape, np.float32), name
    assert entries["VOCA/global_step"].dtype == np.int32 and entries["VOCA/global_step"].shape == ()
    trainable = [n for n in OFFICIAL_WEIGHTS if "/moving_" not in n]
    assert sorted(n for n in entries if n.endswith(("/Adam", "/Adam_1"))) == sorted(
        f"VOCA/{n}/{slot}" for n in trainable for slot in ("Adam", "Adam_1"))
    assert max(e.offset + e.size for e in entries.values()) == OFFICIAL_DATA_BYTES
    spans = sorted((e.offset, e.offset + e.size) for e in entries.values())
    assert all(end == nxt for (_, end), (nxt, _) in zip(spans, spans[1:]))  # packed, no gaps
    assert all(e.size == 4 * np.prod(e.shape, dtype=int) for e in entries.values())


def test_tfbundle_ravdess_index_has_the_documented_variant(shared_data):
    entries = tfbundle.read_index(shared_data / "ravdess_variant" / "gstep_1901.model.index")
    conv = [entries[f"VOCA/SpeechEncoder/conv{i}/weights"].shape for i in range(1, 5)]
    conditions = conv[0][2] - DEEPSPEECH_CLASSES
    assert conditions == 4
    assert [c[3] for c in conv] == [32 * 4, 32 * 4, 64 * 4, 64 * 4]  # size factor 4
    assert entries["VOCA/SpeechEncoder/fc1/weights"].shape == (64 * 4 + conditions, 128)
    assert entries["VOCA/SpeechEncoder/fc2/weights"].shape == (128, 100)  # code size 100
    assert entries["VOCA/ExpressionLayer/expression_offset/weights"].shape == (100, 15069)
    assert not any("FlameExpressionLayer" in name for name in entries)


@pytest.mark.parametrize("suffix", ["", ".index", ".meta", ".data-00000-of-00001"])
def test_tfbundle_prefix_may_name_any_checkpoint_file(shared_data, suffix):
    prefix = shared_data / "voca_official" / "gstep_52280.model"
    entries = tfbundle.read_index(str(prefix) + suffix)
    assert len(entries) == 53


def test_tfbundle_missing_official_data_says_where_to_download(shared_data):
    prefix = shared_data / "voca_official" / "gstep_52280.model"
    with pytest.raises(ModelFileError, match=r"weights file .*gstep_52280\.model\.data-00000-of-00001 "
                                             r"is missing: download the VOCA model from https://voca"):
        tfbundle.read_checkpoint(prefix, names=list(OFFICIAL_WEIGHTS))


# --------------------------------------------------------------------------------------------------
# round trips with TensorFlow
# --------------------------------------------------------------------------------------------------
def test_tfbundle_reads_what_tensorflow_saver_wrote(tf_checkpoint):
    _assert_same(tfbundle.read_checkpoint(tf_checkpoint, verify=True), VALUES)
    entries = tfbundle.read_index(tf_checkpoint)
    assert entries["big"].shape == (1, 3) and entries["names"].dtype == object


def test_tfbundle_reads_only_requested_names(tf_checkpoint):
    out = tfbundle.read_checkpoint(tf_checkpoint, names=["counts", "VOCA/global_step"])
    _assert_same(out, {k: VALUES[k] for k in ("counts", "VOCA/global_step")})


def test_tfbundle_tensorflow_reads_what_we_wrote(tf, tmp_path):
    prefix = tfbundle.write_checkpoint(tmp_path / "ours" / "model", VALUES)
    reader = tf.train.load_checkpoint(str(prefix))
    _assert_same({n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}, VALUES)


def test_tfbundle_saver_restores_what_we_wrote(tf, tmp_path):
    prefix = tfbundle.write_checkpoint(tmp_path / "model", VALUES)
    graph, variables, saver = _graph_with_variables(tf, {n: _blank(v) for n, v in VALUES.items()})
    with tf.compat.v1.Session(graph=graph) as sess:
        saver.restore(sess, str(prefix))
        _assert_same(sess.run(variables), VALUES)


def test_tfbundle_writer_output_is_byte_identical_to_tensorflow(tf_checkpoint, tmp_path):
    prefix = tfbundle.write_checkpoint(tmp_path / "model", VALUES)
    for suffix in (".index", ".data-00000-of-00001"):
        ours = (tmp_path / ("model" + suffix)).read_bytes()
        assert ours == tf_checkpoint.with_name("model" + suffix).read_bytes(), suffix
    assert prefix == tmp_path / "model"


def test_tfbundle_multi_block_index_round_trips_with_tensorflow(tf, tmp_path):
    names = [f"layer{i:03d}/" + "w" * 1000 for i in range(300)]  # ~300 KB of keys: several blocks
    values = {n: np.full((2,), i, dtype=np.float32) for i, n in enumerate(names)}
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "tf"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[values[n] for n in names])
    _assert_same(tfbundle.read_checkpoint(tmp_path / "tf", verify=True), values)
    tfbundle.write_checkpoint(tmp_path / "ours", values)
    assert (tmp_path / "ours.index").read_bytes() == (tmp_path / "tf.index").read_bytes()
    reader = tf.train.load_checkpoint(str(tmp_path / "ours"))
    assert reader.get_tensor(names[-1]).tolist() == [299.0, 299.0]


def test_tfbundle_reads_a_big_endian_bundle(tmp_path):
    arr = np.arange(6, dtype=">i4").reshape(2, 3)
    header = pw.encode_varint_field(1, 1) + pw.encode_varint_field(2, tfbundle.BIG_ENDIAN)
    entry = tfbundle._encode_entry(3, (2, 3), 0, arr.nbytes, 0)
    (tmp_path / "be.index").write_bytes(sstable.build_table([(b"", header), (b"x", entry)]))
    (tmp_path / "be.data-00000-of-00001").write_bytes(arr.tobytes())
    out = tfbundle.read_checkpoint(tmp_path / "be")["x"]
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, np.arange(6).reshape(2, 3))


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def copied(tmp_path):
    prefix = tfbundle.write_checkpoint(tmp_path / "src" / "model", VALUES)
    dst = tmp_path / "gstep_52280.model"
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(str(prefix) + suffix, str(dst) + suffix)
    return dst


def test_tfbundle_missing_index_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"index .*nothing\.index is missing: download"):
        tfbundle.read_index(tmp_path / "nothing")


def test_tfbundle_missing_data_names_the_file(copied):
    os.remove(str(copied) + ".data-00000-of-00001")
    assert len(tfbundle.read_index(copied)) == len(VALUES)  # the index alone is enough to list
    with pytest.raises(ModelFileError, match=r"weights file .*gstep_52280\.model\.data-00000-of-00001 is missing"):
        tfbundle.read_checkpoint(copied)


def test_tfbundle_truncated_data_says_expected_and_actual_bytes(copied):
    data = copied.with_name(copied.name + ".data-00000-of-00001")
    full = data.stat().st_size
    first = min(tfbundle.read_index(copied).values(), key=lambda e: e.offset)
    for cut in (full - 1, first.offset + first.size):
        with open(data, "r+b") as handle:
            handle.truncate(cut)
        assert first.offset + first.size <= cut  # this tensor's bytes are intact, the file is not
        for names in (None, [first.name]):
            with pytest.raises(ModelFileError, match=rf"{data.name} is truncated: expected {full:,} bytes, "
                                                     rf"found {cut:,}"):
                tfbundle.read_checkpoint(copied, names=names)


@pytest.mark.parametrize("content, reason", [
    (b"", "is empty"),
    (b"garbage " * 20, "not a readable TensorFlow checkpoint index: it has no table magic"),
    (b"\x00" * 40 + sstable.TABLE_MAGIC.to_bytes(8, "little"), "not a readable TensorFlow checkpoint index"),
])
def test_tfbundle_bad_index_names_the_file(copied, content, reason):
    index = copied.with_name(copied.name + ".index")
    index.write_bytes(content)
    with pytest.raises(ModelFileError, match=rf"{index.name}.*{reason}|{reason}.*{index.name}"):
        tfbundle.read_index(copied)


def test_tfbundle_index_cut_short_is_refused(copied):
    index = copied.with_name(copied.name + ".index")
    index.write_bytes(index.read_bytes()[:-60])  # loses the footer
    with pytest.raises(ModelFileError, match=index.name):
        tfbundle.read_index(copied)


def test_tfbundle_corrupt_data_fails_verification_only_when_asked(copied):
    data = copied.with_name(copied.name + ".data-00000-of-00001")
    entry = tfbundle.read_index(copied)["VOCA/SpeechEncoder/conv1/weights"]
    raw = bytearray(data.read_bytes())
    raw[entry.offset + 10] ^= 0x01
    data.write_bytes(bytes(raw))
    assert tfbundle.read_checkpoint(copied, names=[entry.name])[entry.name].shape == entry.shape
    with pytest.raises(ModelFileError, match=r"damaged \(checksum mismatch in tensor '.*conv1/weights'\)"):
        tfbundle.read_checkpoint(copied, names=[entry.name], verify=True)


def test_tfbundle_unknown_tensor_name_is_refused(copied):
    with pytest.raises(ModelFileError, match=r"has no tensor\(s\) \['VOCA/nope'\]"):
        tfbundle.read_checkpoint(copied, names=["VOCA/nope"])


def test_tfbundle_unreadable_dtype_is_refused(tmp_path):
    bfloat16 = 14
    header = pw.encode_varint_field(1, 1)
    entry = tfbundle._encode_entry(bfloat16, (2,), 0, 4, 0)
    (tmp_path / "bf.index").write_bytes(sstable.build_table([(b"", header), (b"w", entry)]))
    with pytest.raises(ModelFileError, match=r"tensor 'w' in .*bf\.index has a data type .*DataType 14"):
        tfbundle.read_index(tmp_path / "bf")


@pytest.mark.parametrize("tensors, reason", [
    ({"t": np.array(["2019-01-01"], dtype="datetime64[D]")}, "no TensorFlow equivalent"),
    ({"": np.zeros(2)}, "non-empty strings"),
])
def test_tfbundle_writer_refuses_bad_arguments(tmp_path, tensors, reason):
    with pytest.raises(InputError, match=reason):
        tfbundle.write_checkpoint(tmp_path / "model", tensors)
    assert not (tmp_path / "model.index").exists()
