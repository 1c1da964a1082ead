"""Fixtures shared by the core's stages: FLAME's template, the official VOCA sequence on it, a FLAME-format model."""
import numpy as np
import pytest

from voca_addon.core.animation.shapekeys import factorize
from voca_addon.core.flame import meshio


@pytest.fixture(scope="session")
def flame(shared_data):
    """FLAME_sample.ply (5023 vertices) as a mesh."""
    return meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")


@pytest.fixture(scope="session")
def official(shared_data, flame):
    """VOCA's official output for test_sentence.wav (306 frames, condition 3, 60 fps) as a ShapeKeyAnimation."""
    vertices = np.load(shared_data / "voca_official" / "output_test_sentence_cond3.npz")["vertices"]
    return factorize(vertices, flame.vertices, fps=60.0)


@pytest.fixture(scope="session")
def flame_format(shared_data, tmp_path_factory):
    """(path, arrays) of a FLAME-format model pickle built for the tests (tests/core/flame/flame_format.py)."""
    from tests.core.flame.flame_format import write_flame_format_model
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    return path, write_flame_format_model(path, shared_data)
