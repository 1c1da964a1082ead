"""TensorFlow reference for DeepSpeech 0.1.0's acoustic network and VOCA's audio feature path.

Test- and benchmark-only code (may import TensorFlow; nothing in ``voca_addon/`` may import this).
The real ``output_graph.pb`` is not available here, so this module rebuilds the 0.1.0 network in
TensorFlow from the spec (``../shared/docs/deepspeech-0.1.0.md``) with seeded random weights,
freezes it the way DeepSpeech did (``convert_variables_to_constants`` on ``logits``) and runs the
frozen graph with TensorFlow. It also implements VOCA's audio_handler feature path with
python_speech_features, as the independent reference for the whole-pipeline parity test.

Graph built (TF 1 graph mode, ref variables and v1 control flow like the TF 1.3 original):

- ``input_node`` float32 [batch, T, 494], ``input_lengths`` int32 [batch].
- Transpose to time-major, reshape [-1, 494]; l1..l3 = min(relu(x·h + b), relu_clip)
  (h3 is 2·n_hidden wide); reshape [T, batch, 2·n_hidden].
- ``tf.compat.v1.nn.bidirectional_dynamic_rnn`` of two ``BasicLSTMCell(n_cell, forget_bias=1.0,
  state_is_tuple=True)``, ``time_major=True``, ``sequence_length=input_lengths``: variables
  ``bidirectional_rnn/{fw,bw}/basic_lstm_cell/{kernel,bias}`` [2·n_hidden + n_cell, 4·n_cell].
- Concat the two outputs, reshape [-1, 2·n_cell]; l5 = clip(o·h5 + b5); l6 = l5·h6 + b6;
  ``logits`` = reshape(l6, [-1, batch, 29]) (time-major, raw), which yields the Const
  ``logits/shape/2`` = 29 as in the real graph.
- Frozen: every weight is a Const named like the variable (``h1`` … ``b6``, the LSTM kernels and
  biases), 122,732,573 parameters at full size (n_hidden = n_cell = 2048), file ≈ 491 MB.

Random weights: kernels N(0, gain·sqrt(2 / (fan_in + fan_out))) (Glorot normal), biases N(0, 0.1),
from ``numpy.random.default_rng(seed)``: the same seed gives the same file.

Sessions use 2 intra-op and 2 inter-op threads. Script use::

    python -m tests.reference.tf_deepspeech build OUT.pb --seed 0 --n-hidden 2048
    python -m tests.reference.tf_deepspeech ensure CACHE_DIR --n-hidden 64 --seed 0
    python -m tests.reference.tf_deepspeech run PB INPUTS.npy OUT.npy      # [T,494] -> [T,29]
    python -m tests.reference.tf_deepspeech windows WAV PB OUT.npy         # -> [N,16,29]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, Optional

os.environ["TF_USE_LEGACY_KERAS"] = "1"   # BasicLSTMCell lives in tf_keras, not Keras 3
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tests.reference import cache_names  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import tensor_util  # noqa: E402
from tensorflow.python.util import deprecation  # noqa: E402

NUM_INPUT = 494          # 26 MFCC × (1 + 2·9 context frames)
NUM_CEP = 26
NUM_CONTEXT = 9
NUM_CLASSES = 29
SAMPLE_RATE = 16000      # Hz, DeepSpeech input
DS_FPS = 50              # DeepSpeech steps per second (every second 10 ms MFCC frame)
VOCA_FPS = 60            # VOCA output frames per second
WINDOW = 16              # VOCA window length (60 fps frames)
THREADS = 2
INPUT_NODE = "input_node:0"
INPUT_LENGTHS = "input_lengths:0"
LOGITS = "logits:0"
DENSE = ("h1", "b1", "h2", "b2", "h3", "b3", "h5", "b5", "h6", "b6")
LSTM = tuple(f"bidirectional_rnn/{d}/basic_lstm_cell/{p}" for d in ("fw", "bw") for p in ("kernel", "bias"))
FULL_SIZE_PARAMS = 122_732_573
CACHE_VERSION = cache_names.DEEPSPEECH_CACHE_VERSION


def session_config(optimize: bool = False) -> "tf.compat.v1.ConfigProto":
    """Session options: 2 intra-op and 2 inter-op threads, CPU only.

    ``optimize=False`` (default) turns off Grappler and graph-level constant folding: the logits are
    the same, but on the full-size graph the first run takes ~7 s and 3 GB instead of ~55 s and 9 GB
    (TF otherwise folds and copies the 491 MB of Consts before the first step).
    """
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=THREADS,
                                      inter_op_parallelism_threads=THREADS,
                                      device_count={"GPU": 0})
    if not optimize:
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        config.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
        config.graph_options.optimizer_options.do_constant_folding = False
    return config


def expected_shapes(n_hidden: int = 2048, n_cell: Optional[int] = None) -> Dict[str, tuple]:
    """Const name → shape of the 14 weight tensors for the given widths."""
    n_cell = n_hidden if n_cell is None else n_cell
    n3 = 2 * n_hidden
    shapes = {"h1": (NUM_INPUT, n_hidden), "b1": (n_hidden,), "h2": (n_hidden, n_hidden),
              "b2": (n_hidden,), "h3": (n_hidden, n3), "b3": (n3,),
              "h5": (2 * n_cell, n_hidden), "b5": (n_hidden,), "h6": (n_hidden, NUM_CLASSES),
              "b6": (NUM_CLASSES,)}
    for name in LSTM:
        shapes[name] = (n3 + n_cell, 4 * n_cell) if name.endswith("kernel") else (4 * n_cell,)
    return shapes


@contextlib.contextmanager
def _legacy_control_flow():
    """Build while loops as TF 1 Enter/Exit/TensorArray ops (like TF 1.3), restoring the flag after."""
    was_v2 = tf.compat.v1.control_flow_v2_enabled()
    tf.compat.v1.disable_control_flow_v2()
    try:
        yield
    finally:
        if was_v2:
            tf.compat.v1.enable_control_flow_v2()


def _dense(x, index: int, shape, relu_clip: Optional[float]):
    """x·h<index> + b<index>, then min(relu(.), relu_clip) unless relu_clip is None."""
    zeros = tf.compat.v1.zeros_initializer()
    w = tf.compat.v1.get_variable(f"h{index}", shape, initializer=zeros)
    b = tf.compat.v1.get_variable(f"b{index}", shape[1:], initializer=zeros)
    y = tf.add(tf.matmul(x, w), b)
    return y if relu_clip is None else tf.minimum(tf.nn.relu(y), relu_clip)


def _build_network(n_hidden: int, n_cell: int, relu_clip: float):
    """The 0.1.0 acoustic network in the current graph; returns the ``logits`` tensor."""
    x = tf.compat.v1.placeholder(tf.float32, [None, None, NUM_INPUT], name="input_node")
    lengths = tf.compat.v1.placeholder(tf.int32, [None], name="input_lengths")
    batch_x_shape = tf.shape(x)
    h = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, NUM_INPUT])       # [T·batch, 494]
    h = _dense(h, 1, [NUM_INPUT, n_hidden], relu_clip)
    h = _dense(h, 2, [n_hidden, n_hidden], relu_clip)
    h = _dense(h, 3, [n_hidden, 2 * n_hidden], relu_clip)
    h = tf.reshape(h, [-1, batch_x_shape[0], 2 * n_hidden])          # [T, batch, 2·n_hidden]
    cells = [tf.compat.v1.nn.rnn_cell.BasicLSTMCell(n_cell, forget_bias=1.0, state_is_tuple=True)
             for _ in range(2)]
    outputs, _ = tf.compat.v1.nn.bidirectional_dynamic_rnn(
        cell_fw=cells[0], cell_bw=cells[1], inputs=h, dtype=tf.float32, time_major=True,
        sequence_length=lengths)
    h = tf.reshape(tf.concat(outputs, 2), [-1, 2 * n_cell])          # [T·batch, 2·n_cell]
    h = _dense(h, 5, [2 * n_cell, n_hidden], relu_clip)
    h = _dense(h, 6, [n_hidden, NUM_CLASSES], None)
    return tf.reshape(h, [-1, batch_x_shape[0], NUM_CLASSES], name="logits")


def _randomize(sess, variables, rng: np.random.Generator, gain: float) -> None:
    """Load seeded random values into every variable (Glorot-normal kernels, N(0, 0.1) biases)."""
    for var in sorted(variables, key=lambda v: v.op.name):
        shape = tuple(var.shape.as_list())
        value = rng.standard_normal(shape, dtype=np.float32)
        if len(shape) == 2:
            value *= np.float32(gain * np.sqrt(2.0 / (shape[0] + shape[1])))
        else:
            value *= np.float32(0.1)
        init = var.initializer                       # Assign(var, initial value): feed the value
        sess.run(init, {init.inputs[1]: value})
        del value


def build_frozen_graph(out_pb, seed: int = 0, n_hidden: int = 2048, n_cell: Optional[int] = None,
                       relu_clip: float = 20.0, weight_gain: float = 1.0) -> Path:
    """Build, randomise, freeze and write a DeepSpeech 0.1.0-shaped acoustic model.

    Parameters
    ----------
    out_pb : path-like
        Output binary GraphDef; written under a temporary name, then renamed into place.
    seed : int
        numpy seed of the weights.
    n_hidden : int
        Width of h1, h2, h5 (h3 is 2·n_hidden). 2048 in the release.
    n_cell : int, optional
        LSTM units per direction; defaults to n_hidden (2048 in the release).
    relu_clip : float
        Clip of the ReLU layers (20 in the release).
    weight_gain : float
        Multiplies the kernels' standard deviation (> 1 drives the clipped ReLUs into saturation).

    Returns
    -------
    Path
        ``out_pb``.
    """
    n_cell = n_hidden if n_cell is None else n_cell
    graph = tf.Graph()
    with _legacy_control_flow(), graph.as_default(), deprecation.silence(), warnings.catch_warnings():
        warnings.simplefilter("ignore")                               # TF 1 API deprecation notes
        with tf.compat.v1.variable_scope("", use_resource=False):   # VariableV2 like TF 1.3
            _build_network(n_hidden, n_cell, relu_clip)
        with tf.compat.v1.Session(graph=graph, config=session_config()) as sess:
            _randomize(sess, tf.compat.v1.global_variables(), np.random.default_rng(seed), weight_gain)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["logits"])
    out_pb = Path(out_pb)
    out_pb.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_pb.parent, prefix=f".{out_pb.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(frozen.SerializeToString(deterministic=True))
        os.chmod(tmp, 0o644)                        # mkstemp makes it private
        os.replace(tmp, out_pb)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_pb


def ensure_deepspeech_pb(cache_dir, n_hidden: int, seed: int = 0, n_cell: Optional[int] = None,
                         weight_gain: float = 1.0) -> Path:
    """Build a random frozen graph once under ``cache_dir`` and reuse it.

    The file name encodes the parameters, e.g. ``deepspeech-0.1.0-random-h64-c64-seed0-v1.pb``
    (``-g<gain>`` is added when ``weight_gain`` != 1; ``v`` is ``CACHE_VERSION``).
    """
    n_cell = n_hidden if n_cell is None else n_cell
    path = cache_names.deepspeech_pb_path(cache_dir, n_hidden, seed, n_cell, weight_gain)
    if not path.is_file():
        build_frozen_graph(path, seed, n_hidden, n_cell, weight_gain=weight_gain)
    return path


def read_graph_def(pb_path) -> "tf.compat.v1.GraphDef":
    """Parse a binary frozen GraphDef."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(pb_path).read_bytes())
    return graph_def


def const_arrays(pb_path, names=DENSE + LSTM) -> Dict[str, np.ndarray]:
    """The named Const nodes of a frozen graph as numpy arrays (e.g. to count parameters)."""
    wanted = set(names)
    return {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor)
            for n in read_graph_def(pb_path).node if n.op == "Const" and n.name in wanted}


class FrozenDeepSpeech:
    """A frozen graph imported into a live session (reuse across many runs)."""

    def __init__(self, pb_path, optimize: bool = False):
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.compat.v1.import_graph_def(read_graph_def(pb_path), name="")
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config(optimize))

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Logits float32 [T, 29] for inputs [T, 494] (batch 1, ``input_lengths`` = [T])."""
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 2 or inputs.shape[1] != NUM_INPUT:
            raise ValueError(f"inputs shape {inputs.shape}; want [T, {NUM_INPUT}]")
        feed = {INPUT_NODE: inputs[None], INPUT_LENGTHS: np.array([len(inputs)], dtype=np.int32)}
        return self.session.run(LOGITS, feed_dict=feed)[:, 0]

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_frozen_graph(pb_path, inputs: np.ndarray, optimize: bool = False) -> np.ndarray:
    """Run a frozen DeepSpeech graph once: inputs float32 [T, 494] → logits float32 [T, 29].

    ``optimize``: let Grappler rewrite the graph first (see ``session_config``).
    """
    with FrozenDeepSpeech(pb_path, optimize) as model:
        return model.run(inputs)


def read_audio_16k_int16(wav_path):
    """VOCA's audio read: scipy wavfile, channel 0, resampy to 16 kHz, ``astype(int16)``.

    Returns
    -------
    audio : ndarray int16 [S]
        16 kHz samples (a 16 kHz file is used as read, as resampy returns a copy then).
    duration_s : float
        Length of the file as read (original rate), which sets VOCA's frame count.
    """
    from scipy.io import wavfile
    rate, audio = wavfile.read(str(wav_path))
    if audio.ndim > 1:
        audio = audio[:, 0]
    duration_s = audio.shape[0] / float(rate)
    if rate != SAMPLE_RATE:
        import resampy                          # VOCA's resampler (reference path only)
        audio = resampy.resample(audio.astype(float), rate, SAMPLE_RATE)
    return audio.astype(np.int16), duration_s


def audio_to_inputs(audio: np.ndarray) -> np.ndarray:
    """DeepSpeech inputs float64 [T, 494]: MFCC, every second frame, ±9 context, global normalisation."""
    from python_speech_features import mfcc
    features = mfcc(audio, samplerate=SAMPLE_RATE, numcep=NUM_CEP)[::2]     # [T, 26]
    steps = len(features)
    pad = np.zeros((NUM_CONTEXT, NUM_CEP), dtype=features.dtype)
    padded = np.concatenate([pad, features, pad])
    width = 2 * NUM_CONTEXT + 1
    inputs = np.stack([padded[t:t + width].reshape(-1) for t in range(steps)])   # frame-major
    return (inputs - np.mean(inputs)) / np.std(inputs)


def interpolate_features(features: np.ndarray, input_rate: float, output_rate: float,
                         num_frames: int) -> np.ndarray:
    """Linear resampling in time, per feature (np.interp), to ``num_frames`` rows, float64."""
    t_in = np.arange(features.shape[0]) / float(input_rate)
    t_out = np.arange(num_frames) / float(output_rate)
    return np.stack([np.interp(t_out, t_in, features[:, k]) for k in range(features.shape[1])], axis=1)


def make_windows(features: np.ndarray) -> np.ndarray:
    """Pad 8 zero rows at each end, cut 16-row windows with stride 1: [F, 29] → [F, 16, 29]."""
    half = WINDOW // 2
    pad = np.zeros((half, features.shape[1]), dtype=features.dtype)
    padded = np.concatenate([pad, features, pad])
    return np.stack([padded[i:i + WINDOW] for i in range(len(features))])


def reference_windows(wav_path, pb_path) -> np.ndarray:
    """VOCA's speech-feature windows for a WAV file, computed the reference way.

    python_speech_features MFCC → DeepSpeech inputs → TensorFlow logits (frozen graph) → 50→60 fps
    with ``num_frames = round(duration · 60)`` → 16-frame windows.

    Returns
    -------
    ndarray float64 [num_frames, 16, 29]
        Like VOCA's audio_handler (cast to float32 when fed to the VOCA graph).
    """
    audio, duration_s = read_audio_16k_int16(wav_path)
    logits = run_frozen_graph(pb_path, audio_to_inputs(audio))
    num_frames = int(round(duration_s * VOCA_FPS))
    return make_windows(interpolate_features(logits, DS_FPS, VOCA_FPS, num_frames))


def main(argv=None) -> int:
    """Command line: build / ensure a random frozen graph, run it, compute reference windows."""
    parser = argparse.ArgumentParser(prog="python -m tests.reference.tf_deepspeech",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    build = sub.add_parser("build", help="write a random frozen graph")
    build.add_argument("out_pb")
    ensure = sub.add_parser("ensure", help="build once in CACHE_DIR, print the path")
    ensure.add_argument("cache_dir")
    for p in (build, ensure):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--n-hidden", type=int, default=2048)
        p.add_argument("--n-cell", type=int, default=None)
        p.add_argument("--weight-gain", type=float, default=1.0)
    run = sub.add_parser("run", help="inputs [T,494] .npy → logits [T,29] .npy")
    windows = sub.add_parser("windows", help="WAV → VOCA windows [N,16,29] .npy")
    windows.add_argument("wav")
    for p in (run, windows):
        p.add_argument("pb")
    run.add_argument("inputs")
    for p in (run, windows):
        p.add_argument("out")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.cmd == "build":
        print(build_frozen_graph(args.out_pb, args.seed, args.n_hidden, args.n_cell,
                                 weight_gain=args.weight_gain))
    elif args.cmd == "ensure":
        print(ensure_deepspeech_pb(args.cache_dir, args.n_hidden, args.seed, args.n_cell, args.weight_gain))
    elif args.cmd == "run":
        np.save(args.out, run_frozen_graph(args.pb, np.load(args.inputs)))
    else:
        np.save(args.out, reference_windows(args.wav, args.pb))
    print(f"{args.cmd}: {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
