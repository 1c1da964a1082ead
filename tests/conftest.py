"""Shared pytest fixtures: where the reference data is, and a cache for generated TF fixtures."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
# Generated reference models (random weights in the official formats) are cached here between runs.
FIXTURE_CACHE = Path(os.environ.get("VOCA_TEST_CACHE", ROOT / ".cache" / "test-fixtures"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder ../shared/data; tests needing it skip with a reason when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"reference data not found at {SHARED_DATA} (clone the project next to ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixture_cache() -> Path:
    FIXTURE_CACHE.mkdir(parents=True, exist_ok=True)
    return FIXTURE_CACHE


# --- Random-weight models in the official formats (built with TensorFlow once, then cached) -------

@pytest.fixture(scope="session")
def voca_ckpt(shared_data, fixture_cache) -> Path:
    """A checkpoint twin of the release (53 tensors) written by the official graph's own Saver."""
    from tests.reference import tf_voca
    return tf_voca.ensure_voca_checkpoint(fixture_cache, seed=0,
                                          meta_path=shared_data / "voca_official" / "gstep_52280.model.meta")


@pytest.fixture(scope="session")
def ds_small_pb(fixture_cache) -> Path:
    """A DeepSpeech 0.1.0-structured frozen graph of width 64 (fast tests)."""
    from tests.reference import tf_deepspeech
    return tf_deepspeech.ensure_deepspeech_pb(fixture_cache, n_hidden=64, seed=0)


@pytest.fixture(scope="session")
def ds_saturating_pb(fixture_cache) -> Path:
    """Width 64 with large weights, so the ReLU clip at 20 and saturated LSTM gates are exercised."""
    from tests.reference import tf_deepspeech
    return tf_deepspeech.ensure_deepspeech_pb(fixture_cache, n_hidden=64, seed=1, weight_gain=25.0)


@pytest.fixture(scope="session")
def ds_full_pb(fixture_cache) -> Path:
    """The full-size (491 MB, 122,732,573 parameters) DeepSpeech 0.1.0 graph with random weights."""
    from tests.reference import tf_deepspeech
    return tf_deepspeech.ensure_deepspeech_pb(fixture_cache, n_hidden=2048, seed=0)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A fresh model cache folder for this test session (never the user's ~/.cache)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def flame_template(shared_data):
    from voca_addon.core.face import meshio
    return meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
