"""TensorFlow reference for VOCA: the official release graph, run by TensorFlow itself.

Test- and benchmark-only code (may import TensorFlow; nothing in ``voca_addon/`` may import this).
It loads the official ``gstep_52280.model.meta`` (TF 1.8) into a TF 2 graph, fills its variables with
seeded random values and saves them with the graph's own Saver (the real trained weights are not
available here), then runs that graph exactly like VOCA's inference code. The numpy engine is
proved equal to this.

Facts read from the official ``.meta`` (908 nodes; checked by ``graph_facts`` and the tests):

- Inputs: ``VOCA/Inputs_encoder/speech_features`` float32 [N,16,29,1], ``.../condition_subject_id``
  int32 [N], ``.../is_training`` bool (unknown rank; feed a scalar), ``VOCA/Inputs_decoder/
  template_placeholder`` float32 [N,5023,3,1]. Output ``VOCA/output_decoder`` [N,5023,3,1].
- Condition: ``VOCA/one_hot`` = OneHot(condition_subject_id, depth 8, on 1.0, off 0.0) float32
  [N,8], built OUTSIDE the SpeechEncoder scope. It is the id's only consumer, and both uses of
  the condition read it (through ``VOCA/SpeechEncoder/Reshape_1`` [-1,8]). **To run a blend, feed
  ``VOCA/one_hot:0`` ([N,8] float32) and leave the id unfed** (``CONDITION_ONE_HOT``).
- Batch norm: ``tf.cond`` on ``is_training`` (Switch/Merge ``batch_norm_1/cond``) between two
  ``FusedBatchNorm`` (V1) ops, NHWC over the single channel of speech_features. The inference branch
  ``FusedBatchNorm_1`` (is_training=False) uses moving_mean / moving_variance with
  **epsilon = 1.001e-5** (the op's attr: float32 1.0009999641624745e-05), not the 1e-5 that VOCA's
  code asks for (presumably TF 1.x's fused path raising it to cuDNN's minimum). A second cond
  (``cond_1``) updates the moving averages only when training. Feed ``is_training`` = False.
- Then Reshape [-1,16,1,29] (time as height, the 29 features as channels).
- Condition tile: one_hot [N,8] → Reshape [-1,8,1,1] → Transpose perm [0,2,3,1] → [N,1,1,8] →
  Tile [1,16,1,1] → [N,16,1,8]. Concat ``conditioning_speech_features`` on axis -1 with the
  **speech features first, condition second**: channels 0..28 = features, 29..36 = condition.
- conv1..conv4: Conv2D NHWC, kernel [3,1,Cin,Cout], strides [1,2,1,1], padding 'SAME'
  (even input, stride 2: 0 rows before, 1 after), BiasAdd, ReLU. Time 16→8→4→2→1.
- Flatten: Reshape [-1,64] of [N,1,1,64] (H = W = 1, so the order is just the channels).
- Concat ``conditioning_audio_embedding`` on axis 1: **flattened features first (64), then
  one_hot (8)** → 72.
- fc1: xw_plus_b then Tanh → 128; fc2: xw_plus_b, linear (no activation) → 50.
- Decoder ``VOCA/FlameExpressionLayer/expression_offset``: xw_plus_b → [N,15069], Reshape
  [-1,5023,3,1] (row-major: vertex-major, x y z interleaved), ``output_decoder`` = Add(offsets,
  template). Its weights' initial value is a Const (the PCA basis) in the graph.
- Variables: 53 (18 weights, 32 Adam slots ``VOCA/VOCA/<weight>/Adam`` and ``Adam_1`` for the 16
  trainable ones — the batch-norm moving statistics are not trainable — plus ``VOCA/global_step``
  int32 and ``VOCA/beta1_power``, ``VOCA/beta2_power``). Saver V2, sharded into one data file.

Contract: random checkpoints have the release's 53 tensor names, dtypes and shapes and a data file
of exactly 9,714,776 bytes (asserted), under the release's file names (``gstep_52280.model.*``).
Sessions use 2 intra-op and 2 inter-op threads. Script use (the benchmark and fixtures call it in a
subprocess)::

    python -m tests.reference.tf_voca make OUTDIR --seed 0
    python -m tests.reference.tf_voca ensure CACHE_DIR --seed 0
    python -m tests.reference.tf_voca run PREFIX WINDOWS.npy TEMPLATE.npy OUT.npy --condition 2
    python -m tests.reference.tf_voca facts
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple, Union

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tests.reference import cache_names  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_META = (ROOT / ".." / "shared" / "data" / "voca_official" / "gstep_52280.model.meta").resolve()
CHECKPOINT_NAME = cache_names.CHECKPOINT_NAME
DATA_SUFFIX = ".data-00000-of-00001"
DATA_BYTES = 9_714_776                    # size of the release's data file
NUM_TENSORS = 53
GLOBAL_STEP = 52280
NUM_CONDITIONS = 8
NUM_VERTICES = 5023
THREADS = 2
CACHE_VERSION = cache_names.VOCA_CACHE_VERSION

SPEECH_FEATURES = "VOCA/Inputs_encoder/speech_features:0"
CONDITION_ID = "VOCA/Inputs_encoder/condition_subject_id:0"
CONDITION_ONE_HOT = "VOCA/one_hot:0"     # feed this [N, 8] float32 for a blend of styles
IS_TRAINING = "VOCA/Inputs_encoder/is_training:0"
TEMPLATE = "VOCA/Inputs_decoder/template_placeholder:0"
OUTPUT = "VOCA/output_decoder:0"

Condition = Union[int, np.integer, np.ndarray, list, tuple]


def session_config() -> "tf.compat.v1.ConfigProto":
    """Session options: 2 intra-op and 2 inter-op threads, CPU only."""
    return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=THREADS,
                                    inter_op_parallelism_threads=THREADS,
                                    device_count={"GPU": 0})


def read_meta_graph(meta_path=OFFICIAL_META) -> meta_graph_pb2.MetaGraphDef:
    """Parse a ``.meta`` file and strip every ``_output_shapes`` attr (TF 2 rejects TF 1.8's; voca#85)."""
    proto = meta_graph_pb2.MetaGraphDef()
    proto.ParseFromString(Path(meta_path).read_bytes())
    nodes = list(proto.graph_def.node)
    for function in proto.graph_def.library.function:
        nodes.extend(function.node_def)
    for node in nodes:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    return proto


def load_official_graph(meta_path=OFFICIAL_META) -> Tuple[tf.Graph, "tf.compat.v1.train.Saver"]:
    """Import the official MetaGraphDef into a fresh graph.

    Parameters
    ----------
    meta_path : path-like
        ``gstep_52280.model.meta``.

    Returns
    -------
    graph : tf.Graph
        The imported graph (TF 1 graph mode; ref variables, v1 control flow as in the file).
    saver : tf.compat.v1.train.Saver
        The graph's own Saver, rebuilt from the file's SaverDef.
    """
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(read_meta_graph(meta_path))
    if saver is None:
        raise RuntimeError(f"{meta_path} holds no SaverDef")
    return graph, saver


def _random_value(name: str, shape, dtype, rng: np.random.Generator) -> np.ndarray:
    """A random value for one variable of the VOCA graph, scaled so outputs look like VOCA's (mm..cm)."""
    short = name.split(":")[0]
    if short == "VOCA/global_step":
        return np.asarray(GLOBAL_STEP, dtype=dtype)
    if short in ("VOCA/beta1_power", "VOCA/beta2_power"):
        beta = 0.9 if "beta1" in short else 0.999
        return np.asarray(beta ** GLOBAL_STEP, dtype=dtype)   # what Adam holds after training
    if short.endswith("/Adam"):                                # first moment
        return rng.normal(0.0, 1e-5, shape).astype(dtype)
    if short.endswith("/Adam_1"):                              # second moment, non-negative
        return np.square(rng.normal(0.0, 1e-5, shape)).astype(dtype)
    return _random_weight(short, shape, rng).astype(dtype)


def _random_weight(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Random values for one of the 18 inference weights (float64)."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "moving_variance":
        return rng.uniform(0.5, 2.0, shape)
    if leaf == "gamma":
        return 1.0 + rng.normal(0.0, 0.1, shape)
    if leaf in ("beta", "moving_mean"):
        return rng.normal(0.0, 0.5 if leaf == "moving_mean" else 0.1, shape)
    if "expression_offset" in name:                # decoder: 1 mm per unit of code, ~1 mm bias
        return rng.normal(0.0, 1e-3, shape)
    if leaf == "biases":
        return rng.normal(0.0, 0.05, shape)
    fan_in = int(np.prod(shape[:-1]))              # conv [3,1,Cin,Cout] or fc [in, out]
    gain = 2.0 if "/conv" in name else 1.0         # He for ReLU convs, LeCun for tanh / linear fc
    return rng.normal(0.0, np.sqrt(gain / fan_in), shape)


def _fill_and_save(meta_path, tmp_prefix: str, seed: int) -> Dict[str, np.ndarray]:
    """Load random values into every variable of the official graph and save with its own Saver."""
    graph, saver = load_official_graph(meta_path)
    rng = np.random.default_rng(seed)
    values = {}
    with tf.compat.v1.Session(graph=graph, config=session_config()) as sess:
        with graph.as_default():
            variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.op.name)
        for var in variables:
            dtype = var.dtype.base_dtype.as_numpy_dtype
            value = _random_value(var.op.name, tuple(var.shape.as_list()), dtype, rng)
            init = var.initializer            # Assign(var, initial value): feed the value
            sess.run(init, {init.inputs[1]: value})
            values[var.op.name] = value
        saver.save(sess, tmp_prefix, write_meta_graph=False, write_state=False)
    return values


def make_random_checkpoint(meta_path=OFFICIAL_META, out_prefix=None, seed: int = 0) -> Path:
    """Write a checkpoint of the official graph with seeded random values.

    Parameters
    ----------
    meta_path : path-like
        The official ``gstep_52280.model.meta``.
    out_prefix : path-like
        Prefix to write, e.g. ``OUT/gstep_52280.model``; ``.index`` and ``.data-00000-of-00001`` are
        appended (no ``checkpoint`` state file, no ``.meta``: like the release download).
    seed : int
        numpy seed; the same seed gives byte-identical tensors.

    Returns
    -------
    Path
        The prefix written.
    """
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_prefix.parent, prefix=".tmp-voca-") as tmp:
        tmp_prefix = os.path.join(tmp, CHECKPOINT_NAME)
        _fill_and_save(meta_path, tmp_prefix, seed)
        check_release_layout(tmp_prefix)
        os.replace(tmp_prefix + DATA_SUFFIX, str(out_prefix) + DATA_SUFFIX)
        os.replace(tmp_prefix + ".index", str(out_prefix) + ".index")
    return out_prefix


def check_release_layout(prefix) -> None:
    """Raise if a checkpoint differs from the release's layout (53 tensors, 9,714,776 data bytes)."""
    size = os.path.getsize(str(prefix) + DATA_SUFFIX)
    count = len(tf.train.list_variables(str(prefix)))
    if size != DATA_BYTES or count != NUM_TENSORS:
        raise RuntimeError(f"{prefix}: {count} tensors, {size} data bytes; the release has "
                           f"{NUM_TENSORS} and {DATA_BYTES}")


def ensure_voca_checkpoint(cache_dir, seed: int = 0, meta_path=OFFICIAL_META) -> Path:
    """Build a random checkpoint once under ``cache_dir`` and reuse it.

    Returns ``cache_dir/voca-random-seed<seed>-v<CACHE_VERSION>/gstep_52280.model``. The folder is
    built under a temporary name and renamed into place, so concurrent callers never see a partial
    checkpoint.
    """
    prefix = cache_names.voca_checkpoint_prefix(cache_dir, seed)
    final_dir = prefix.parent
    if Path(str(prefix) + ".index").is_file():
        return prefix
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".tmp-voca-seed{seed}-"))
    try:
        make_random_checkpoint(meta_path, tmp_dir / CHECKPOINT_NAME, seed)
        tmp_dir.chmod(0o755)                                # mkdtemp makes it private
        os.rename(tmp_dir, final_dir)
    except OSError:
        if not Path(str(prefix) + ".index").is_file():   # not a lost race: a real error
            raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return prefix


def _condition_feed(condition: Condition, n: int) -> Dict[str, np.ndarray]:
    """Feed for a 0-based condition id (int) or a weighted condition vector ([8] or [N, 8])."""
    if isinstance(condition, (int, np.integer)):
        if not 0 <= int(condition) < NUM_CONDITIONS:
            raise ValueError(f"condition id {condition} not in 0..{NUM_CONDITIONS - 1}")
        return {CONDITION_ID: np.full(n, int(condition), dtype=np.int32)}
    vector = np.asarray(condition, dtype=np.float32)
    if vector.shape == (NUM_CONDITIONS,):
        vector = np.tile(vector, (n, 1))
    if vector.shape != (n, NUM_CONDITIONS):
        raise ValueError(f"condition vector shape {vector.shape}; want [{NUM_CONDITIONS}] or "
                         f"[{n}, {NUM_CONDITIONS}]")
    return {CONDITION_ONE_HOT: vector}


class OfficialVoca:
    """The official graph restored from a checkpoint in a live session (reuse across many runs)."""

    def __init__(self, ckpt_prefix, meta_path=OFFICIAL_META):
        self.graph, saver = load_official_graph(meta_path)
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config())
        with self.graph.as_default():                  # Saver.restore needs graph mode
            saver.restore(self.session, str(ckpt_prefix))

    def run(self, windows: np.ndarray, condition: Condition, template: np.ndarray) -> np.ndarray:
        """Vertices float32 [N, 5023, 3] for windows [N, 16, 29] and a template [5023, 3].

        ``condition``: a 0-based int fed as ``condition_subject_id``, or a float vector [8] (or
        [N, 8]) fed in place of ``VOCA/one_hot:0`` (a blend).
        """
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1:] != (16, 29):
            raise ValueError(f"windows shape {windows.shape}; want [N, 16, 29]")
        n = windows.shape[0]
        template = np.asarray(template, dtype=np.float32).reshape(1, NUM_VERTICES, 3, 1)
        feed = {SPEECH_FEATURES: windows[..., None], IS_TRAINING: False,
                TEMPLATE: np.broadcast_to(template, (n, NUM_VERTICES, 3, 1))}
        feed.update(_condition_feed(condition, n))
        out = self.session.run(OUTPUT, feed_dict=feed)
        return np.ascontiguousarray(out[..., 0], dtype=np.float32)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_official_graph(meta_path, ckpt_prefix, windows: np.ndarray, condition: Condition,
                       template: np.ndarray) -> np.ndarray:
    """Restore ``ckpt_prefix`` into the official graph and run it once.

    Parameters
    ----------
    meta_path : path-like
        The official ``.meta``.
    ckpt_prefix : path-like
        Checkpoint prefix (``.../gstep_52280.model``).
    windows : ndarray [N, 16, 29]
        VOCA speech features (any float dtype; fed as float32).
    condition : int or ndarray
        0-based condition id, or a weighted vector [8] / [N, 8] (fed as ``VOCA/one_hot:0``).
    template : ndarray [5023, 3]
        Neutral mesh in metres.

    Returns
    -------
    ndarray float32 [N, 5023, 3]
    """
    with OfficialVoca(ckpt_prefix, meta_path) as model:
        return model.run(windows, condition, template)


def _const(nodes, name):
    return tensor_util.MakeNdarray(nodes[name].attr["value"].tensor).tolist()


def graph_facts(meta_path=OFFICIAL_META) -> dict:
    """The structure facts of the official graph that the numpy engine must follow (see module doc)."""
    nodes = {n.name: n for n in read_meta_graph(meta_path).graph_def.node}
    enc = "VOCA/SpeechEncoder/"
    bn = nodes[enc + "batch_norm_1/cond/FusedBatchNorm_1"]
    convs = [n for n in nodes.values() if n.op == "Conv2D"]
    return {
        "bn_op": bn.op, "bn_is_training": bn.attr["is_training"].b,
        "bn_epsilon": bn.attr["epsilon"].f,
        "bn_cond_on_is_training": nodes[enc + "batch_norm_1/cond/Switch"].input[0] == IS_TRAINING[:-2],
        "one_hot_depth": _const(nodes, "VOCA/one_hot/depth"),
        "speech_reshape": _const(nodes, enc + "Reshape/shape"),
        "condition_reshape": _const(nodes, enc + "Reshape_2/shape"),
        "condition_transpose": _const(nodes, enc + "transpose/perm"),
        "condition_tile": _const(nodes, enc + "Tile/multiples"),
        "conv_input_concat": [i.split("/")[-1] for i in nodes[enc + "conditioning_speech_features"].input],
        "conv_padding": sorted({n.attr["padding"].s.decode() for n in convs}),
        "conv_strides": sorted({tuple(n.attr["strides"].list.i) for n in convs}),
        "flatten_shape": _const(nodes, enc + "Reshape_3/shape"),
        "fc_input_concat": list(nodes[enc + "concat_audio_embedding/conditioning_audio_embedding"].input),
        "fc1_activation": nodes[enc + "fc1/Tanh"].op,
        "fc2_consumer": nodes["VOCA/FlameExpressionLayer/expression_offset/expression_offset/"
                              "xw_plus_b/MatMul"].input[0],
        "decoder_reshape": _const(nodes, "VOCA/FlameExpressionLayer/Reshape/shape"),
        "output_inputs": list(nodes["VOCA/output_decoder"].input),
        "num_variables": sum(n.op == "VariableV2" for n in nodes.values()),
    }


def _parse_condition(text: str) -> Condition:
    """``2`` → int id; ``0.5,0.5,0,0,0,0,0,0`` → vector."""
    return int(text) if "," not in text else np.array([float(x) for x in text.split(",")])


def main(argv=None) -> int:
    """Command line: make / ensure a random checkpoint, run the official graph, print graph facts."""
    parser = argparse.ArgumentParser(prog="python -m tests.reference.tf_voca",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--meta", default=str(OFFICIAL_META), help="official gstep_52280.model.meta")
    sub = parser.add_subparsers(dest="cmd", required=True)
    make = sub.add_parser("make", help="write OUTDIR/gstep_52280.model.{index,data-*}")
    make.add_argument("outdir")
    ensure = sub.add_parser("ensure", help="build once in CACHE_DIR, print the prefix")
    ensure.add_argument("cache_dir")
    for p in (make, ensure):
        p.add_argument("--seed", type=int, default=0)
    run = sub.add_parser("run", help="run the graph: windows [N,16,29] .npy → vertices [N,5023,3] .npy")
    run.add_argument("prefix")
    run.add_argument("windows")
    run.add_argument("template")
    run.add_argument("out")
    run.add_argument("--condition", type=_parse_condition, default=2,
                     help="0-based id, or 8 comma-separated weights (blend)")
    sub.add_parser("facts", help="print the graph structure facts")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.cmd == "make":
        print(make_random_checkpoint(args.meta, Path(args.outdir) / CHECKPOINT_NAME, args.seed))
    elif args.cmd == "ensure":
        print(ensure_voca_checkpoint(args.cache_dir, args.seed, args.meta))
    elif args.cmd == "run":
        out = run_official_graph(args.meta, args.prefix, np.load(args.windows), args.condition,
                                 np.load(args.template))
        np.save(args.out, out)
    else:
        for key, value in graph_facts(args.meta).items():
            print(f"{key}: {value}")
    print(f"{args.cmd}: {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
