"""blas_threads.limited: numpy's OpenBLAS thread count set for a block and restored, also when blocks overlap."""
import threading

import numpy as np
import pytest

from voca_addon.core.speech import blas_threads


@pytest.fixture
def count():
    funcs = blas_threads._functions()
    if funcs is None:
        pytest.skip("numpy's BLAS here is not OpenBLAS found in /proc/self/maps")
    return funcs[1]


def test_blas_threads_limited_sets_and_restores(count):
    before = count()
    with blas_threads.limited(1) as done:
        assert done and count() == 1
        a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
        np.testing.assert_array_equal(a @ np.eye(64, dtype=np.float32), a)   # products still work
    assert count() == before


def test_blas_threads_overlapping_blocks_restore_the_first_count(count):
    before = count()
    inside, release = threading.Event(), threading.Event()

    def other():
        with blas_threads.limited(1):
            inside.set()
            release.wait(10)
    worker = threading.Thread(target=other)
    with blas_threads.limited(1):
        worker.start()
        assert inside.wait(10)
    assert count() == 1                        # the other block still runs: still limited
    release.set()
    worker.join(10)
    assert count() == before
