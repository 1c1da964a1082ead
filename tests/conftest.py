"""Shared pytest fixtures: where the reference data is, and a cache for generated TF fixtures."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.reference import cache_names

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VOCA_SHARED_DATA", ROOT / ".." / "shared" / "data")).resolve()
# In CI (the variable CI set) these skips are failures: the reference data and Blender must be there, or a
# green run would hide that most of the suite never ran.
REQUIRED_IN_CI = ("reference data not found", "could not import 'bpy'", "bpy is not installed")


def _required_skip(report) -> bool:
    return bool(os.environ.get("CI")) and report.skipped and any(
        reason in str(report.longrepr) for reason in REQUIRED_IN_CI)


def _fail_required_skip(report) -> None:
    if _required_skip(report):
        report.outcome = "failed"
        report.longrepr = f"required when CI is set, but skipped: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _fail_required_skip((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    _fail_required_skip((yield).get_result())
# The add-on's own caches (converted models, phone tracks: voca_addon.core.caches) live in a folder of this
# test session: no test reads what an earlier run or the user left there, and the tests of one session share
# what they found (a clip detected once). Commands the tests start inherit it.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="voca-test-cache-"))
os.environ["VOCA_CACHE_DIR"] = str(SESSION_CACHE)
atexit.register(shutil.rmtree, SESSION_CACHE, True)
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
# The Blender tests also run in environments without TensorFlow (bpy 4.2 / 4.5, see the Makefile): there
# the cached files are used as they are, and a missing one is an error that says how to build it.

def _cached(path: Path, build):
    if path.exists() or Path(str(path) + ".index").exists():
        return path
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pytest.fail(f"{path} is not built and this environment has no TensorFlow to build it: run "
                    "`make test` (it builds the reference models in .venv first).")
    return build()


@pytest.fixture(scope="session")
def voca_ckpt(shared_data, fixture_cache) -> Path:
    """A checkpoint twin of the release (53 tensors) written by the official graph's own Saver."""
    def build():
        from tests.reference import tf_voca
        return tf_voca.ensure_voca_checkpoint(
            fixture_cache, seed=0, meta_path=shared_data / "voca_official" / "gstep_52280.model.meta")
    return _cached(cache_names.voca_checkpoint_prefix(fixture_cache, seed=0), build)


def _deepspeech(fixture_cache, n_hidden: int, seed: int, weight_gain: float = 1.0) -> Path:
    def build():
        from tests.reference import tf_deepspeech
        return tf_deepspeech.ensure_deepspeech_pb(fixture_cache, n_hidden=n_hidden, seed=seed,
                                                  weight_gain=weight_gain)
    return _cached(cache_names.deepspeech_pb_path(fixture_cache, n_hidden, seed, weight_gain=weight_gain),
                   build)


@pytest.fixture(scope="session")
def ds_small_pb(fixture_cache) -> Path:
    """A DeepSpeech 0.1.0-structured frozen graph of width 64 (fast tests)."""
    return _deepspeech(fixture_cache, 64, seed=0)


@pytest.fixture(scope="session")
def ds_saturating_pb(fixture_cache) -> Path:
    """Width 64 with large weights, so the ReLU clip at 20 and saturated LSTM gates are exercised."""
    return _deepspeech(fixture_cache, 64, seed=1, weight_gain=25.0)


@pytest.fixture(scope="session")
def ds_full_pb(fixture_cache) -> Path:
    """The full-size (491 MB, 122,732,573 parameters) DeepSpeech 0.1.0 graph with random weights."""
    return _deepspeech(fixture_cache, 2048, seed=0)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A fresh model cache folder for this test session (never the user's ~/.cache)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def flame_template(shared_data):
    from voca_addon.core.flame import meshio
    return meshio.read_mesh(shared_data / "flame" / "FLAME_sample.ply")
