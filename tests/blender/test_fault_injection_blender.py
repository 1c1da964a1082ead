"""Nothing lost when a Blender command is killed (issue 19): animate (``.blend`` + ``--npz`` + ``--phonemes``
committed together), animate ``--render`` (``.blend`` + a 3-frame video), import-sequence (``.blend`` + phone track) and retarget (the character's ``.blend``),
each killed at every stage it passes — the claims, each progress step, each write, a partly written
``.npz``, the ``.blend`` save (a SIGKILL 0.1 s into it), the commit, before and after each rename. The checks
are those of :mod:`tests.core.fault_harness` (every final name holds the previous file byte for byte, a
complete new one, or nothing where there was nothing; SIGINT: exit 130, one line, no temporary; after a
SIGKILL the next run into the same place succeeds and leaves no leftover).

animate: SIGKILL at each stage's last hit over a previous output and SIGINT at its middle hit into an empty
folder. render, import-sequence and retarget take one kill per stage, the signal and the case
alternating. The full sweep is ``tools/fault_sweep.py --blender``.
"""
import pytest

pytest.importorskip("bpy")

from tests.blender import fault_commands  # noqa: E402
from tests.core import fault_harness as fh  # noqa: E402

STAGES = {
    "animate": {"claim", "progress", "write", "npz-block", "written", "commit", "rename", "renamed"},
    "render": {"claim", "progress", "write", "commit", "rename", "renamed"},
    "import-sequence": {"claim", "write", "written", "commit", "rename", "renamed"},
    "retarget": {"claim", "write", "written", "commit", "rename", "renamed"},
}


@pytest.fixture(scope="module")
def setup(shared_data, voca_ckpt, ds_small_pb, tmp_path_factory):
    work = tmp_path_factory.mktemp("fault-injection-blender")
    inputs = fh.core_inputs(shared_data, voca_ckpt, ds_small_pb, work / "inputs")
    return work, {c.name: c for c in fault_commands.blender_commands(inputs, shared_data, work / "inputs")}


def kills_for(name, counts):
    stages = sorted(counts.items())
    if name == "animate":
        return [k for stage, n in stages for k in ((stage, n, "KILL", True), (stage, max(1, (n + 1) // 2), "INT", False))] \
            + [("write", 1, f"KILL+{fh.SAVE_DELAYS_S[-1]}", True)]      # inside the save of anim.blend
    return [(stage, n, "KILL", True) if i % 2 == 0 else (stage, n, "INT", False)
            for i, (stage, n) in enumerate(stages)]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_fault_injection_blender_kill_at_every_stage_loses_nothing(setup, name):
    work, commands = setup
    counts, reference = fh.discover(commands[name], work)
    assert STAGES[name] <= set(counts), (name, counts)
    kills = kills_for(name, counts)
    outcomes = fh.sweep(commands[name], work, reference, kills)
    figures = fh.figures(outcomes)
    assert figures["hit"] + figures["late"] == figures["kills"] == len(kills), \
        [o.problems for o in outcomes if not o.hit]
    assert figures["lost"] == []
    assert figures["files_checked"] >= figures["kills"]
