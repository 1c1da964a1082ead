"""graphdef: frozen graphs written by TensorFlow, decoded without it; views not copies; clear errors."""
import os

import numpy as np
import pytest

from voca_addon.core.formats import graphdef
from voca_addon.core.errors import ModelFileError

_RNG = np.random.default_rng(17)
VARIABLES = {  # frozen into Consts: several dtypes, tensor_content and typed-value encodings
    "h1": _RNG.standard_normal((494, 64)).astype(np.float32),
    "b1": _RNG.standard_normal(64).astype(np.float32),
    "steps": np.array([3, -1, 2**30], dtype=np.int32),
    "big": np.array([[2**40, -(2**40)]], dtype=np.int64),
    "doubles": np.array([np.pi, -1e300]),
    "flags": np.array([True, False, True, True]),
    "small": np.array([[1, 255]], dtype=np.uint8),
}
PLACEHOLDERS = {  # name -> (dtype, declared shape, shape as the reader reports it)
    "input_node": ("float32", [None, None, 494], (-1, -1, 494)),
    "input_lengths": ("int32", [None], (-1,)),
    "fixed": ("float32", [1, 16, 29, 1], (1, 16, 29, 1)),
    "scalar": ("int64", [], ()),
    "anything": ("float32", None, None),
}


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow", reason="TensorFlow (reference only) is not installed")


def _build(tf):
    graph = tf.Graph()
    with graph.as_default():
        ph = {n: tf.compat.v1.placeholder(d, s, name=n) for n, (d, s, _) in PLACEHOLDERS.items()}
        var = {n: tf.compat.v1.Variable(v, name=n, use_resource=False) for n, v in VARIABLES.items()}
        layer = tf.matmul(tf.reshape(ph["input_node"], [-1, 494]), var["h1"]) + var["b1"]
        conv = tf.nn.conv2d(ph["fixed"], tf.constant(1.5, shape=[3, 1, 1, 2]), [1, 2, 1, 1], "SAME")
        extras = [
            tf.constant(1.5, shape=[3, 4], name="broadcast"),
            tf.constant(-2.5, shape=[2, 3], dtype=tf.float64, name="broadcast_f64"),
            tf.constant(np.float16(0.333), name="half"),
            tf.constant(-7, name="neg_int"),
            tf.constant(np.int64(-(2**50)), name="neg_int64"),
            tf.constant(True, name="truth"),
            tf.constant([b"ab", b"", b"\xff"], name="strings"),
            tf.constant(np.arange(6, dtype=np.float16).reshape(2, 3), name="half_content"),
            tf.identity(var["steps"], name="steps_out"),
            tf.cast(var["big"], tf.float32) + tf.cast(var["small"], tf.float32),
            tf.reduce_sum(tf.cast(var["flags"], tf.float64)) + var["doubles"],
        ]
        outputs = [tf.identity(layer, name="logits"), tf.identity(conv, name="conv_out")]
        outputs += [tf.identity(tf.reduce_sum(tf.cast(ph["input_lengths"], tf.int64)) + ph["scalar"],
                                name="lengths_out"), tf.identity(ph["anything"], name="any_out")]
        outputs += [tf.identity(t, name=f"extra{i}") for i, t in enumerate(extras)]
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), [o.op.name for o in outputs])


def _with_short_float_val(tf, graph_def):
    """Add a Const holding fewer float_val than elements (TensorFlow repeats the last one)."""
    node = graph_def.node.add(name="short_values", op="Const")
    node.attr["dtype"].type = tf.float32.as_datatype_enum
    proto = node.attr["value"].tensor
    proto.dtype = tf.float32.as_datatype_enum
    proto.tensor_shape.dim.add(size=5)
    proto.float_val.extend([1.0, 2.0])
    return graph_def


@pytest.fixture(scope="module")
def frozen(tf, tmp_path_factory):
    """(path of the .pb, TensorFlow's GraphDef proto of it)."""
    graph_def = _with_short_float_val(tf, _build(tf))
    folder = tmp_path_factory.mktemp("graph")
    tf.io.write_graph(graph_def, str(folder), "frozen.pb", as_text=False)
    return folder / "frozen.pb", graph_def


def _tf_attr(tf, value):
    """A TensorFlow AttrValue proto in the reader's conventions (the expected values)."""
    kind = value.WhichOneof("value")
    if kind == "shape":
        return None if value.shape.unknown_rank else tuple(d.size for d in value.shape.dim)
    if kind == "tensor":
        return tf.make_ndarray(value.tensor)
    if kind == "list":
        lst = value.list
        for field in ("s", "i", "f", "b", "type"):
            if len(getattr(lst, field)):
                return list(getattr(lst, field))
        if len(lst.shape):
            return [None if s.unknown_rank else tuple(d.size for d in s.dim) for s in lst.shape]
        return [tf.make_ndarray(t) for t in lst.tensor]
    return getattr(value, kind)


def _assert_attr_equal(ours, theirs, where):
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-7), where
    else:
        assert ours == theirs and type(ours) is type(theirs), where


def test_graphdef_nodes_match_tensorflow(tf, frozen):
    path, graph_def = frozen
    graph = graphdef.read_graph(path)
    assert list(graph.nodes) == [n.name for n in graph_def.node]
    assert graph.producer == graph_def.versions.producer > 0
    for node in graph_def.node:
        ours = graph.nodes[node.name]
        assert (ours.op, ours.inputs, ours.device) == (node.op, list(node.input), node.device), node.name
        assert sorted(ours.attrs) == sorted(node.attr), node.name
        for key, value in node.attr.items():
            _assert_attr_equal(ours.attrs[key], _tf_attr(tf, value), f"{node.name}.{key}")


def test_graphdef_constants_equal_make_ndarray(tf, frozen):
    path, graph_def = frozen
    consts = graphdef.read_graph(path).constants()
    expected = {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in graph_def.node if n.op == "Const"}
    assert sorted(consts) == sorted(expected)
    for name, value in expected.items():
        _assert_attr_equal(consts[name], value, name)
    for name, value in VARIABLES.items():
        np.testing.assert_array_equal(consts[name], value)


def test_graphdef_broadcasts_short_value_lists(frozen):
    consts = graphdef.read_graph(frozen[0]).constants()
    np.testing.assert_array_equal(consts["broadcast"], np.full((3, 4), 1.5, dtype=np.float32))
    np.testing.assert_array_equal(consts["broadcast_f64"], np.full((2, 3), -2.5))
    np.testing.assert_array_equal(consts["short_values"], np.array([1, 2, 2, 2, 2], dtype=np.float32))
    assert consts["half"].dtype == np.float16 and consts["half"] == np.float16(0.333)
    assert consts["neg_int"] == -7 and consts["neg_int64"] == -(2**50)
    assert consts["strings"].tolist() == [b"ab", b"", b"\xff"]


def test_graphdef_string_and_int_attrs(frozen):
    graph = graphdef.read_graph(frozen[0])
    conv = next(n for n in graph.nodes.values() if n.op == "Conv2D")
    assert conv.attrs["padding"] == b"SAME" and conv.attrs["data_format"] == b"NHWC"
    assert conv.attrs["strides"] == [1, 2, 1, 1]
    assert graph.nodes["input_lengths"].attrs["dtype"] == 3  # DT_INT32


def test_graphdef_placeholder_shapes(frozen):
    graph = graphdef.read_graph(frozen[0])
    for name, (_, _, expected) in PLACEHOLDERS.items():
        assert graph.placeholder_shape(name) == expected, name
    with pytest.raises(ModelFileError, match="no input placeholder 'logits'"):
        graph.placeholder_shape("logits")


def test_graphdef_large_constants_are_views_not_copies(frozen):
    consts = graphdef.read_graph(frozen[0]).constants()
    for name in ("h1", "b1", "half_content"):
        arr = consts[name]
        assert arr.base is not None and not arr.flags.owndata, name
        assert not arr.flags.writeable, name  # a read-only map of the file


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
def test_graphdef_missing_file_names_it(tmp_path):
    with pytest.raises(ModelFileError, match=r"output_graph\.pb is missing: download deepspeech-0\.1\.0"):
        graphdef.read_graph(tmp_path / "output_graph.pb")


def test_graphdef_empty_file_names_it(tmp_path):
    (tmp_path / "output_graph.pb").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"output_graph\.pb is empty"):
        graphdef.read_graph(tmp_path / "output_graph.pb")


def test_graphdef_truncated_file_is_refused(frozen, tmp_path):
    data = frozen[0].read_bytes()
    cut = tmp_path / "output_graph.pb"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"output_graph\.pb is not a TensorFlow frozen graph \(\.pb\): "
                                             r".*needs \d+ bytes but only \d+ remain"):
        graphdef.read_graph(cut)


@pytest.mark.parametrize("content", [
    b"node {\n  name: \"input_node\"\n  op: \"Placeholder\"\n}\n",  # a text .pbtxt
    b"\x00" * 64,
    bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
])
def test_graphdef_not_a_graph_is_refused(tmp_path, content):
    path = tmp_path / "output_graph.pb"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"output_graph\.pb is not a TensorFlow frozen graph \(\.pb\)"):
        graphdef.read_graph(path)


def test_graphdef_meta_graph_is_not_a_frozen_graph(shared_data):
    meta = shared_data / "voca_official" / "gstep_52280.model.meta"
    with pytest.raises(ModelFileError, match=r"gstep_52280\.model\.meta is not a TensorFlow frozen graph"):
        graphdef.read_graph(meta)
