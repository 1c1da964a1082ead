"""``models install`` and ``models fetch`` claim the model folder before any work (issue 19): a second run
into the same folder while one runs is refused at once with one line naming it, and writes nothing; a
killed run's claim is cleared by the next run; a refused or failing run leaves no folder it made.

Real processes (``python -m voca_addon`` with bpy/TensorFlow blocked) install a real zip laid out like
VOCA's download, built from the fixtures' checkpoint written by the official graph's Saver. The first run
is held at the moment it has claimed the folder by the fault point ``claim`` (``VOCA_FAULT=claim:1:STOP``:
it stops itself, alive, holding the claim), so "at once" needs no timing.
"""
import os
import signal
import subprocess
import sys
import time

from tests.core.models.test_fetch import voca_zip
from tests.core.test_cli import BLOCKER, ROOT, assert_user_error, cli
from voca_addon.core import claims
from voca_addon.core.models import status

CKPT = ["gstep_52280.model.data-00000-of-00001", "gstep_52280.model.index", "gstep_52280.model.meta"]
CODE = BLOCKER + "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; " \
                 "runpy.run_module('voca_addon', run_name='__main__')"


def _start(fault, *args):
    env = dict(os.environ, VOCA_FAULT=fault)
    return subprocess.Popen([sys.executable, "-c", CODE, *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_stopped(proc, bound_s=120.0):
    """Until ``proc`` has stopped itself (state T in /proc) at its fault point."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline and proc.poll() is None:
        with open(f"/proc/{proc.pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    raise AssertionError(f"the first run did not stop at its claim (exit {proc.poll()}): {proc.stderr.read()}")


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs)


def test_models_install_a_second_run_into_the_folder_is_refused(voca_ckpt, shared_data, tmp_path):
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    models = tmp_path / "models"
    first = _start("claim:1:STOP", "models", "install", archive, "--folder", models)
    try:
        _wait_stopped(first)
        assert claims.claim_path(models).is_file()              # claimed before any work ...
        assert not models.exists()                              # ... nothing unpacked yet
        before = _tree(tmp_path)
        for args in (["install", archive, "--overwrite"], ["fetch"]):
            second = cli("models", *args, "--folder", models)
            assert_user_error(second, f"'{models}' is being written by another run: ",
                              f"(process {first.pid} on ", "models install")
            assert _tree(tmp_path) == before                    # the refused run wrote nothing
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert out.count("installed ") == 3
    assert sorted(p.name for p in models.iterdir()) == CKPT     # whole, and nothing else
    assert status.status(models)[0].state == status.OK
    assert not claims.claim_path(models).exists()               # released when it ended


def test_models_install_clears_the_claim_of_a_killed_run(voca_ckpt, shared_data, tmp_path):
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    models = tmp_path / "deep" / "models"
    killed = _start("claim:1:KILL", "models", "install", archive, "--folder", models)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert claims.claim_path(models).is_file()                  # kill -9 leaves its claim
    again = cli("models", "install", archive, "--folder", models)
    assert again.returncode == 0, again.stderr
    assert status.status(models)[0].state == status.OK
    assert not claims.claim_path(models).exists()


def test_models_install_bad_input_writes_nothing(voca_ckpt, shared_data, tmp_path):
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    (tmp_path / "not.zip").write_bytes(b"plain text")
    (tmp_path / "a-file").write_bytes(b"x")
    before = _tree(tmp_path)
    r = cli("models", "install", tmp_path / "not.zip", "--folder", tmp_path / "new" / "deep" / "models")
    assert_user_error(r, "not a readable zip")
    r = cli("models", "install", archive, "--folder", tmp_path / "a-file" / "models")
    assert_user_error(r, f"cannot create the model folder '{tmp_path / 'a-file' / 'models'}'")
    r = cli("models", "fetch", "--folder", tmp_path / "a-file" / "deep" / "models")
    assert_user_error(r, "cannot create the model folder")
    assert _tree(tmp_path) == before                            # no folder made, no claim left


def test_a_model_folder_under_an_unknown_users_home_is_taken_as_written(tmp_path):
    """'~nosuchuser/…' (a typo, a user not on this machine): the path as written, as the shell leaves it —
    never the RuntimeError (exit 3) Path.expanduser raises for it."""
    env = dict(os.environ, VOCA_MODEL_DIR="~voca-no-such-user/models", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "voca_addon", "models", "status"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr                # missing files: status says so, exit 1
    assert "~voca-no-such-user/models" in done.stdout and "Traceback" not in done.stderr
