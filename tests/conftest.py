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
