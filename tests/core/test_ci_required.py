"""When CI is set, a missing ../shared/data or bpy fails the run instead of skipping (tests/conftest.py)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_TEST = "tests/core/character/test_align_similarity.py::test_landmarks_ids_are_the_shared_data_file"


def _pytest(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)


def test_missing_reference_data_skips_locally_and_fails_in_ci(tmp_path):
    absent = str(tmp_path / "no-shared-data")
    local = _pytest(SHARED_TEST, VOCA_SHARED_DATA=absent)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = _pytest(SHARED_TEST, VOCA_SHARED_DATA=absent, CI="true")
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout          # the fixture's setup fails
    assert "required when CI is set, but skipped" in ci.stdout and "reference data not found" in ci.stdout


def test_missing_bpy_fails_a_blender_module_in_ci(tmp_path):
    blocker = tmp_path / "block"                      # a bpy that cannot be imported, first on the path
    (blocker / "bpy").mkdir(parents=True)
    (blocker / "bpy" / "__init__.py").write_text("raise ImportError('no Blender here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}
    local = _pytest("tests/blender/test_writer.py", **env)
    assert local.returncode == 5 and "1 skipped" in local.stdout, local.stdout   # 5: no test ran, none failed
    ci = _pytest("tests/blender/test_writer.py", CI="1", **env)
    assert ci.returncode == 2 and "required when CI is set, but skipped" in ci.stdout, ci.stdout  # collection
