"""Build the test suite's reference models once, before the stages that share them run side by side.

The random-weight models in the official formats (tests/conftest.py's ``voca_ckpt``, ``ds_small_pb``,
``ds_saturating_pb``) are written by TensorFlow into ``.cache/test-fixtures`` (``$VOCA_TEST_CACHE``); the
Blender-layer stages of ``make test`` run in environments without TensorFlow and read them. Built here, in
``.venv``, by one process: the stages that start next (``tools/blender_matrix.sh``, the main stage among them)
never build the same file at once. Files already there are kept.

    .venv/bin/python tools/test_fixtures.py
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import FIXTURE_CACHE, SHARED_DATA   # noqa: E402
from tests.reference import cache_names                  # noqa: E402


def main() -> None:
    FIXTURE_CACHE.mkdir(parents=True, exist_ok=True)
    wanted = [(cache_names.voca_checkpoint_prefix(FIXTURE_CACHE, seed=0), "voca", {}),
              (cache_names.deepspeech_pb_path(FIXTURE_CACHE, 64, 0), "ds", dict(n_hidden=64, seed=0)),
              (cache_names.deepspeech_pb_path(FIXTURE_CACHE, 64, 1, weight_gain=25.0), "ds",
               dict(n_hidden=64, seed=1, weight_gain=25.0))]
    for path, kind, kwargs in wanted:
        if path.exists() or Path(str(path) + ".index").exists():
            continue
        if kind == "voca":
            from tests.reference import tf_voca
            tf_voca.ensure_voca_checkpoint(FIXTURE_CACHE, seed=0,
                                           meta_path=SHARED_DATA / "voca_official" / "gstep_52280.model.meta")
        else:
            from tests.reference import tf_deepspeech
            tf_deepspeech.ensure_deepspeech_pb(FIXTURE_CACHE, **kwargs)
        print(f"built {path}")


if __name__ == "__main__":
    main()
