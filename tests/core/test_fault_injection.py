"""Nothing lost when a run is killed (issue 19): each core command (features, infer, phonemes, batch) killed
at every stage it passes — claims taken (before computing), each progress step / clip while computing, each
write, a partly written ``.npz``, the commit, before and after each rename — once with SIGKILL over a
previous complete output (the ``--overwrite`` case; then run again into the same place) and once with SIGINT
into an empty folder. The checks are :mod:`tests.core.fault_harness`'s: every final name holds the previous
file byte for byte, a complete new file, or nothing where there was nothing; SIGINT exits 130 with one line
and leaves no temporary or claim; the run after a SIGKILL succeeds and leaves no leftover.

The full sweep (1st, 2nd and last hit of each stage, both signals, both cases) is ``tools/fault_sweep.py``.
"""
import os
import signal
import subprocess
import sys

import pytest

from tests.core import fault_harness as fh
from voca_addon.core import faults

# the stages each command must pass (a hook removed from the core fails here, not silently)
STAGES = {
    "features": {"claim", "progress", "write", "npz-block", "written", "commit", "rename", "renamed"},
    "infer": {"claim", "progress", "write", "npz-block", "written", "commit", "rename", "renamed"},
    "phonemes": {"claim", "write", "written", "commit", "rename", "renamed"},
    "batch": {"claim", "compute", "write", "npz-block", "written", "commit", "rename", "renamed"},
}


@pytest.fixture(scope="module")
def setup(shared_data, voca_ckpt, ds_small_pb, tmp_path_factory):
    work = tmp_path_factory.mktemp("fault-injection")
    inputs = fh.core_inputs(shared_data, voca_ckpt, ds_small_pb, work / "inputs")
    return work, {cmd.name: cmd for cmd in fh.core_commands(inputs)}


def one_kill_per_stage_and_signal(counts):
    """SIGKILL at the last hit over a previous output; SIGINT at the middle hit into an empty folder."""
    return [k for stage, n in sorted(counts.items())
            for k in ((stage, n, "KILL", True), (stage, max(1, (n + 1) // 2), "INT", False))]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_fault_injection_kill_at_every_stage_loses_nothing(setup, name):
    work, commands = setup
    cmd = commands[name]
    counts, reference = fh.discover(cmd, work)
    assert STAGES[name] <= set(counts), (name, counts)
    outcomes = fh.sweep(cmd, work, reference, one_kill_per_stage_and_signal(counts))
    figures = fh.figures(outcomes)
    assert figures["hit"] == figures["kills"] == 2 * len(counts), [o.problems for o in outcomes if not o.hit]
    assert figures["lost"] == []
    assert figures["files_checked"] >= figures["kills"]          # the folders were not empty after all


STAGED_WRITE = ("import sys; from pathlib import Path; from voca_addon.core import outputs\n"
            "dest = Path(sys.argv[1])\n"
            "with outputs.Staged([dest]) as s:\n"
            "    s.temp(dest).write_bytes(b'new whole file')\n"
            "    s.commit()\n")


@pytest.mark.parametrize("stage", ["commit", "rename", "renamed"])
def test_fault_injection_replacing_a_blend_never_leaves_its_name_empty(tmp_path, stage):
    """The old ``X.blend`` is kept as ``X.blend1`` by a link, not moved aside: a kill between keeping it and
    renaming the new one over it left no ``X.blend`` at all (found by the Blender sweep)."""
    dest = tmp_path / "x.blend"
    dest.write_bytes(b"old whole file")
    env = dict(os.environ, VOCA_FAULT=f"{stage}:1:KILL", PYTHONPATH=str(fh.ROOT))
    r = subprocess.run([sys.executable, "-c", STAGED_WRITE, str(dest)], env=env, cwd=fh.ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert dest.read_bytes() in (b"old whole file", b"new whole file")
    if stage != "commit":
        assert (tmp_path / "x.blend1").read_bytes() == b"old whole file"


def test_faults_point_counts_logs_and_fires_only_at_the_planned_hit(tmp_path):
    log = tmp_path / "hits.log"
    code = ("from voca_addon.core import faults\n"
            "import os; assert 'VOCA_FAULT' not in os.environ and 'VOCA_FAULT_LOG' not in os.environ\n"
            "for _ in range(3): faults.point('write')\n"
            "faults.point('rename'); print('after the first rename', flush=True); faults.point('rename')\n"
            "print('not reached')\n")
    env = dict(os.environ, VOCA_FAULT="rename:2:INT", VOCA_FAULT_LOG=str(log), PYTHONPATH=str(fh.ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=fh.ROOT, capture_output=True, text=True,
                       timeout=60)
    assert "after the first rename" in r.stdout and "not reached" not in r.stdout
    assert "KeyboardInterrupt" in r.stderr                # SIGINT at the 2nd rename, in the main thread
    assert log.read_text().split() == ["write", "write", "write", "rename", "rename"]


@pytest.mark.parametrize("text", ["write", "nowhere:1:KILL", "write:0:KILL", "write:1:NOSUCH", "write:x:INT"])
def test_faults_parse_refuses_a_malformed_plan(text):
    with pytest.raises(ValueError):
        faults.parse(text)


def test_faults_parse_reads_name_hit_signal_and_delay():
    assert faults.parse("npz-block:3:KILL") == faults.Plan("npz-block", 3, signal.SIGKILL, 0.0)
    assert faults.parse("write:1:SIGINT:0.5") == faults.Plan("write", 1, signal.SIGINT, 0.5)


def test_faults_a_malformed_plan_is_said_and_ignored(capsys, monkeypatch):
    """A stray VOCA_FAULT never stops the add-on or a command: one warning line, no fault."""
    from voca_addon.core import faults
    monkeypatch.setattr(faults, "_plan", None)
    monkeypatch.setattr(faults, "_log", None)
    env = {faults.ENV: "write:zero:KILL"}
    faults._configure(env)
    assert faults._plan is None and env == {}
    assert "no fault is injected" in capsys.readouterr().err
