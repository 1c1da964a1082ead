"""Outputs are claimed: a second run into a destination another live run writes is refused with one line
naming that run; claims of killed runs (this host: process gone; another host: not renewed) are cleared;
every claim is released when the run ends, however it ends (voca_addon/core/claims.py)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voca_addon.cli import common
from voca_addon.core import claims, outputs
from voca_addon.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from voca_addon.core import claims, outputs
with claims.claiming():
    outputs.check_output(sys.argv[1], overwrite=True)
    print("claimed", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(dest, seconds=60.0):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(dest), str(seconds)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "claimed"
    return proc


def test_claims_a_second_run_is_refused_while_the_first_lives(tmp_path):
    dest = tmp_path / "scene.blend"
    first = _holder(dest)
    try:
        with claims.claiming():
            for overwrite in (False, True):
                with pytest.raises(InputError, match=rf"'{dest}' is being written by another run: '.*' "
                                                     rf"\(process {first.pid} on {socket.gethostname()}, since"):
                    outputs.check_output(dest, overwrite=overwrite)
            other = outputs.check_output(tmp_path / "other.blend")       # other names are free
            assert claims.claim_path(other).is_file()
        assert not claims.claim_path(other).exists()                      # released on leaving
    finally:
        first.terminate()
        first.wait()


def test_claims_of_a_killed_run_are_cleared(tmp_path):
    dest = tmp_path / "anim.npz"
    killed = _holder(dest)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert claims.claim_path(dest).is_file()                              # kill -9 leaves it
    with claims.claiming():
        outputs.check_output(dest)
        assert json.loads(claims.claim_path(dest).read_text())["pid"] == os.getpid()
    assert not claims.claim_path(dest).exists()


def test_claims_from_another_host_expire_unless_renewed(tmp_path):
    dest = tmp_path / "clip.npz"
    path = claims.claim_path(dest)
    path.write_text(json.dumps({"host": "dask-worker-7", "pid": 4242, "since": time.time(),
                                "command": "dask worker"}))
    with claims.claiming(), pytest.raises(InputError, match=r"process 4242 on dask-worker-7"):
        outputs.check_output(dest)                                        # fresh: the worker is writing
    old = time.time() - claims.EXPIRY_S - 5
    os.utime(path, (old, old))                                            # not renewed: the worker is gone
    with claims.claiming():
        outputs.check_output(dest)
    assert not path.exists()


def test_claims_a_reused_process_id_is_not_the_claimant(tmp_path):
    dest = tmp_path / "x.npz"
    mine = claims._me()
    mine["start"] = "1"                                                   # this pid, another process's start
    claims.claim_path(dest).write_text(json.dumps(mine))
    with claims.claiming():
        outputs.check_output(dest)


def test_claims_released_when_a_command_fails_or_is_interrupted(tmp_path):
    dest = tmp_path / "out.npz"

    def fails():
        outputs.check_output(dest)
        raise InputError("something the user gave is wrong")

    def interrupted():
        outputs.check_output(dest)
        raise KeyboardInterrupt
    assert common.run_guarded(fails) == 2 and common.run_guarded(interrupted) == 130
    assert list(tmp_path.iterdir()) == []
    outputs.check_output(dest)                                            # outside a run: no claim
    assert list(tmp_path.iterdir()) == []


def test_claims_are_renewed_while_the_run_lasts(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "RENEW_S", 0.05)
    dest = tmp_path / "long.blend"
    with claims.claiming():
        outputs.check_output(dest)
        path = claims.claim_path(dest)
        old = time.time() - 100
        os.utime(path, (old, old))
        deadline = time.time() + 10
        while path.stat().st_mtime < time.time() - 50 and time.time() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime > time.time() - 50


def test_claims_release_gives_one_destination_back_before_the_run_ends(tmp_path):
    dest, other = tmp_path / "models", tmp_path / "kept.npz"
    with claims.claiming():
        claims.claim(dest)
        outputs.check_output(other)
        claims.release(dest)
        assert not claims.claim_path(dest).exists() and claims.held() == [other]
        claims.release(tmp_path / "never-claimed")                      # nothing to give back
        assert claims.claim_path(other).is_file()


def test_process_gone_never_signals_a_process_on_windows(monkeypatch):
    """On Windows os.kill(pid, 0) is TerminateProcess: asking whether a claim's owner lives must not kill it."""
    def no_kill(*args):
        raise AssertionError(f"os.kill{args} called")
    asked = []
    monkeypatch.setattr(claims.os, "name", "nt")
    monkeypatch.setattr(claims.os, "kill", no_kill)
    monkeypatch.setattr(claims, "_windows_process_gone", lambda pid: asked.append(pid) or False)
    assert claims.process_gone(os.getpid()) is False and asked == [os.getpid()]
    assert claims.process_gone("not a pid") is False and asked == [os.getpid()]


def test_holding_claims_one_destination_alone_and_releases_it(tmp_path):
    """A job in a long-lived process (Blender's download): its folder claimed, refused while another run holds
    it, released on every exit path — and claiming stays off for the rest of the process."""
    folder = tmp_path / "voca_models"
    first = _holder(folder)
    try:
        with pytest.raises(InputError, match=rf"is being written by another run: .*process {first.pid}"):
            with claims.holding(folder):
                pass
    finally:
        first.terminate()
        first.wait()
    with claims.holding(folder) as held:
        assert held == folder and claims.claim_path(folder).is_file()
        claims.claim(tmp_path / "elsewhere.csv")                         # the process is not claiming
        assert claims.held() == [] and not claims.claim_path(tmp_path / "elsewhere.csv").exists()
    assert not claims.claim_path(folder).exists()
    with pytest.raises(ZeroDivisionError):
        with claims.holding(folder):
            1 / 0
    assert not claims.claim_path(folder).exists()                         # released on an error too
