"""Where the generated reference models are cached — without importing TensorFlow.

The TensorFlow builders (:mod:`tests.reference.tf_voca`, :mod:`tests.reference.tf_deepspeech`) write
these paths; the Blender-layer tests on bpy 4.2 / 4.5, whose environments have no TensorFlow, read the
same files (``make test`` builds them first in the main environment).
"""
from pathlib import Path
from typing import Optional

CHECKPOINT_NAME = "gstep_52280.model"     # the VOCA release's checkpoint prefix
VOCA_CACHE_VERSION = 1                    # bump when the random values change, to rebuild caches
DEEPSPEECH_CACHE_VERSION = 1              # bump when the graph builder changes


def voca_checkpoint_prefix(cache_dir, seed: int = 0) -> Path:
    """``cache_dir/voca-random-seed<seed>-v<version>/gstep_52280.model``."""
    return Path(cache_dir) / f"voca-random-seed{seed}-v{VOCA_CACHE_VERSION}" / CHECKPOINT_NAME


def deepspeech_pb_path(cache_dir, n_hidden: int, seed: int = 0, n_cell: Optional[int] = None,
                       weight_gain: float = 1.0) -> Path:
    """E.g. ``deepspeech-0.1.0-random-h64-c64-seed0-v1.pb`` (``-g<gain>`` when ``weight_gain`` != 1)."""
    n_cell = n_hidden if n_cell is None else n_cell
    gain = "" if weight_gain == 1.0 else f"-g{weight_gain:g}"
    return Path(cache_dir) / (f"deepspeech-0.1.0-random-h{n_hidden}-c{n_cell}{gain}-seed{seed}"
                              f"-v{DEEPSPEECH_CACHE_VERSION}.pb")
