"""Frozen TensorFlow graphs (``GraphDef`` ``.pb`` files, e.g. DeepSpeech 0.1.0) without TensorFlow.

The file is memory-mapped and decoded with :mod:`.protowire`. Node names, ops, inputs and attrs are
decoded eagerly (small); tensor payloads (``tensor_content``) are never copied: each constant is an
``np.frombuffer`` view of the mapped file, so a 491 MB graph costs no more than mapping it.

Schema used (tensorflow/core/framework/*.proto): GraphDef node=1 (NodeDef), versions=4
(VersionDef producer=1). NodeDef name=1, op=2, input=3, device=4, attr=5 (map entry key=1, value=2).
AttrValue list=1, s=2, i=3, f=4, b=5, type=6, shape=7, tensor=8, placeholder=9, func=10.
TensorProto dtype=1, tensor_shape=2, tensor_content=4, float_val=5, double_val=6, int_val=7,
string_val=8, scomplex_val=9, int64_val=10, bool_val=11, dcomplex_val=12, half_val=13,
uint32_val=16, uint64_val=17.

Contract
--------
- Imports only the standard library, numpy and this package; never ``bpy`` or ``tensorflow``.
- Attr values: ``s`` -> bytes (as TensorFlow's Python API gives them), ``i`` -> int, ``f`` -> float,
  ``b`` -> bool, ``type`` -> int (TensorFlow DataType enum), ``shape`` -> tuple with -1 for unknown
  dims or None for unknown rank, ``tensor`` -> np.ndarray (:class:`OpaqueTensor` when numpy has no
  such dtype), ``list`` -> list of those, ``func`` -> its name (str).
- Constant arrays are read-only views of the mapped file and may be unaligned; copy them once
  (``np.array(arr)``) before heavy math: numpy copies unaligned operands on every matmul.
- Bad files raise :class:`~..errors.ModelFileError` naming the file. Thread-safe (no shared state).
"""
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import protowire as pw
from ..errors import ModelFileError
from .tfbundle import decode_tensor_shape, numpy_dtype

GRAPH_HINT = ("download deepspeech-0.1.0-models.tar.gz from "
              "https://github.com/mozilla/DeepSpeech/releases/tag/v0.1.0 and give its output_graph.pb")
_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*\Z")
_OP_NAME = re.compile(r"[A-Za-z0-9_>.]+\Z")

# TensorProto value fields by TensorFlow DataType enum: (field number, how its values are stored).
_FLOAT_FIELDS = {1: (5, "<f4"), 2: (6, "<f8"), 8: (9, "<f4"), 18: (12, "<f8")}
_VARINT_FIELDS = {3: 7, 4: 7, 5: 7, 6: 7, 11: 7, 12: 7, 13: 7, 15: 7, 16: 7, 17: 7,
                  9: 10, 10: 11, 19: 13, 22: 16, 23: 17}
DT_STRING, DT_HALF = 7, 19
UNSIGNED_64 = {23}
PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class OpaqueTensor:
    """A tensor attr whose TensorFlow dtype numpy cannot hold (bfloat16, resource, variant...)."""

    dtype: int  # TensorFlow DataType enum
    shape: Tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One decoded ``NodeDef``."""

    name: str
    op: str
    inputs: List[str]  # "name", "name:1" or "^name" (control input)
    device: str
    attrs: Dict[str, Any]


# --------------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------------
def _typed_values(fields: Dict[int, list], tf_dtype: int, dtype: np.dtype) -> np.ndarray:
    """The TensorProto's repeated value field for its dtype, as a flat array."""
    if tf_dtype == DT_STRING:
        items = [bytes(v) for v in fields.get(8, [])]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out
    if tf_dtype in _FLOAT_FIELDS:
        number, storage = _FLOAT_FIELDS[tf_dtype]
        return pw.unpack_fixed(fields.get(number, []), storage).view(dtype)
    ints = pw.unpack_varints(fields.get(_VARINT_FIELDS[tf_dtype], []), signed=tf_dtype not in UNSIGNED_64)
    if tf_dtype == DT_HALF:  # half_val holds the float16 bit patterns
        return np.array(ints, dtype=np.int64).astype(np.uint16).view(dtype)
    return np.array(ints, dtype=np.uint64 if tf_dtype in UNSIGNED_64 else np.int64).astype(dtype)


def _broadcast(values: np.ndarray, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Values to shape, TensorFlow's way: fewer values than elements repeat the last one."""
    count = int(np.prod(shape, dtype=np.int64))
    if values.size > count:
        raise pw.ProtoDecodeError(f"a tensor of shape {shape} holds {values.size} values")
    if values.size == count:
        return values.reshape(shape)
    out = np.empty(count, dtype=dtype)
    out[:values.size] = values
    out[values.size:] = values[-1] if values.size else (b"" if dtype.kind == "O" else 0)
    return out.reshape(shape)


def decode_tensor(buf: pw.Buffer) -> Union[np.ndarray, OpaqueTensor]:
    """Decode a ``TensorProto``.

    Returns
    -------
    np.ndarray or OpaqueTensor
        A zero-copy (read-only when ``buf`` is) view of ``tensor_content`` when present, else an array
        built from the typed value field, broadcast to the shape.
    """
    fields = pw.parse(buf)
    tf_dtype = pw.last(fields, 1, 0)
    shape = decode_tensor_shape(pw.last(fields, 2, b"")) or ()
    if any(d < 0 for d in shape):
        raise pw.ProtoDecodeError(f"a constant tensor has an unknown dimension {shape}")
    dtype = numpy_dtype(tf_dtype)
    if dtype is None:
        return OpaqueTensor(tf_dtype, shape)
    content = pw.last(fields, 4)
    if content is not None and len(content) and dtype.kind != "O":
        if len(content) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise pw.ProtoDecodeError(f"tensor_content has {len(content)} bytes for shape {shape} of {dtype}")
        return np.frombuffer(content, dtype=dtype).reshape(shape)
    return _broadcast(_typed_values(fields, tf_dtype, dtype), shape, dtype)


def _list_value(buf: pw.Buffer) -> list:
    fields = pw.parse(buf)
    if 2 in fields:
        return [bytes(v) for v in fields[2]]
    if 3 in fields or 6 in fields:
        return pw.unpack_varints(fields.get(3, []) + fields.get(6, []))
    if 4 in fields:
        return pw.unpack_fixed(fields[4], "<f4").tolist()
    if 5 in fields:
        return [bool(v) for v in pw.unpack_varints(fields[5])]
    if 7 in fields:
        return [decode_tensor_shape(v) for v in fields[7]]
    if 8 in fields:
        return [decode_tensor(v) for v in fields[8]]
    return [pw.to_str(pw.last(pw.parse(v), 1, b"")) for v in fields.get(9, [])]


_ATTR_DECODERS = {
    (1, pw.LEN): _list_value,
    (2, pw.LEN): bytes,
    (3, pw.VARINT): pw.to_signed64,
    (4, pw.FIXED32): pw.fixed32_to_float,
    (5, pw.VARINT): bool,
    (6, pw.VARINT): int,
    (7, pw.LEN): decode_tensor_shape,
    (8, pw.LEN): decode_tensor,
    (9, pw.LEN): pw.to_str,
    (10, pw.LEN): lambda v: pw.to_str(pw.last(pw.parse(v), 1, b"")),
}
_LAST_ATTR_FIELD = 10


def decode_attr_value(buf: pw.Buffer) -> Any:
    """Decode an ``AttrValue`` (a oneof: the last field set wins); None when none is set.

    Unknown (newer) fields are skipped; a known field with the wrong wire type is an error.
    """
    result = None
    for number, wire, value in pw.iter_fields(buf):
        decoder = _ATTR_DECODERS.get((number, wire))
        if decoder is not None:
            result = decoder(value)
        elif number <= _LAST_ATTR_FIELD:
            raise pw.ProtoDecodeError(f"AttrValue field {number} has wire type {wire}")
    return result


def _decode_node(buf: pw.Buffer) -> Node:
    fields = pw.parse(buf)
    name = pw.to_str(pw.last(fields, 1, b""))
    op = pw.to_str(pw.last(fields, 2, b""))
    if not _NODE_NAME.match(name) or not _OP_NAME.match(op):
        raise pw.ProtoDecodeError(f"a node has an invalid name or op ({name[:40]!r}, {op[:40]!r})")
    attrs = {}
    for entry in fields.get(5, []):
        entry_fields = pw.parse(entry)
        attrs[pw.to_str(pw.last(entry_fields, 1, b""))] = decode_attr_value(pw.last(entry_fields, 2, b""))
    return Node(name=name, op=op, inputs=[pw.to_str(v) for v in fields.get(3, [])],
                device=pw.to_str(pw.last(fields, 4, b"")), attrs=attrs)


# --------------------------------------------------------------------------------------------------
# the graph
# --------------------------------------------------------------------------------------------------
class FrozenGraph:
    """A decoded GraphDef: ``nodes`` by name (file order), the producer version and the file path."""

    def __init__(self, path: Path, nodes: Dict[str, Node], producer: int):
        self.path = path
        self.nodes = nodes
        self.producer = producer  # TensorFlow GraphDef version that wrote the file (0 if unknown)

    def constants(self) -> Dict[str, np.ndarray]:
        """Every ``Const`` node's value (views of the mapped file; see the module contract)."""
        return {name: node.attrs["value"] for name, node in self.nodes.items()
                if node.op == "Const" and isinstance(node.attrs.get("value"), np.ndarray)}

    def placeholder_shape(self, name: str) -> Optional[Tuple[int, ...]]:
        """Declared shape of a ``Placeholder``: -1 for unknown dims, None for unknown rank.

        Raises
        ------
        ModelFileError
            The graph has no placeholder of that name (not the expected model).
        """
        node = self.nodes.get(name)
        if node is None or not node.op.startswith("Placeholder"):
            raise ModelFileError(f"the graph {self.path} has no input placeholder '{name}': "
                                 f"is it the right model? {GRAPH_HINT}")
        if "shape" in node.attrs:
            return node.attrs["shape"]
        shapes = node.attrs.get("_output_shapes") or [None]
        return shapes[0]


def _parse_graph(buf: memoryview) -> Tuple[Dict[str, Node], int]:
    nodes: Dict[str, Node] = {}
    producer = 0
    for number, wire, value in pw.iter_fields(buf):
        if number == 1:
            if wire != pw.LEN:
                raise pw.ProtoDecodeError("field 1 (node) is not a message")
            node = _decode_node(value)
            nodes[node.name] = node
        elif number == 4 and wire == pw.LEN:
            producer = pw.to_signed64(pw.last(pw.parse(value), 1, 0))
    if not nodes:
        raise pw.ProtoDecodeError("it has no nodes")
    return nodes, producer


def _map_file(path: Path) -> memoryview:
    if not path.is_file():
        raise ModelFileError(f"the graph file {path} is missing: {GRAPH_HINT}")
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ModelFileError(f"the graph file {path} is empty (an interrupted download?): {GRAPH_HINT}")
        # the map outlives the file handle; constant views keep it alive
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def read_graph(path: PathLike) -> FrozenGraph:
    """Read a frozen GraphDef (``.pb``).

    Parameters
    ----------
    path : path-like
        The binary GraphDef, e.g. DeepSpeech 0.1.0's ``output_graph.pb``.

    Returns
    -------
    FrozenGraph
        Decoding costs milliseconds per thousand nodes; tensor payloads are not read until used.

    Raises
    ------
    ModelFileError
        Missing, empty, truncated or not a GraphDef (a text ``.pbtxt``, a ``.meta``...).
    """
    path = Path(path)
    buf = _map_file(path)
    try:
        nodes, producer = _parse_graph(buf)
    except (pw.ProtoDecodeError, ValueError) as exc:
        kind = " (a .meta file is a MetaGraphDef that needs a checkpoint, not a frozen graph)" \
            if path.suffix == ".meta" else ""
        raise ModelFileError(f"{path} is not a TensorFlow frozen graph (.pb){kind}: {exc}. "
                             f"If the download was interrupted, get it again: {GRAPH_HINT}") from None
    return FrozenGraph(path, nodes, producer)
