"""retarget's sources checked for what they claim, as a user runs it (issue 19, rows 4, 5, 7, 8, 15): a truncated
file, millimetres, fps out of range and a bad --audio are refused (one line, exit 2, before the fit); a one-frame
or still source gives still keys; the share of the motion explained is given only where it means something."""
import argparse
import json

import numpy as np
import pytest

from tests.core.character.test_retarget_cli import case, run  # noqa: F401  (the user's fixture)
from tests.core.test_cli import assert_user_error
from voca_addon.cli import retarget as retarget_cli
from voca_addon.core.animation.shapekeys import ShapeKeyAnimation
from voca_addon.core.character import keysolve


def test_retarget_refuses_a_truncated_source_naming_it(case):
    for name in ("t.npz", "t.npy"):
        whole = case["dir"] / f"whole{name[1:]}"
        frames = np.load(case["source"])["vertices"][:40]
        np.savez(whole, vertices=frames, fps=60.0) if name.endswith("z") else np.save(whole, frames)
        cut = case["dir"] / name
        cut.write_bytes(whole.read_bytes()[:100_000])            # head -c 100000
        assert_user_error(run(case, source=cut), f"'{cut}' is not a complete .{name[2:]} (truncated or damaged)")
    assert not case["out"].exists()


def test_retarget_refuses_millimetre_frames_and_a_millimetre_infer_file(case, official):
    mm = case["dir"] / "mm.npz"
    np.savez(mm, vertices=np.load(case["source"])["vertices"] * 1000.0, fps=60.0)     # the official frames × 1000
    assert_user_error(run(case, source=mm), "is about 1000× the template's size", "looks like millimetres")
    scaled = ShapeKeyAnimation(official.basis * 1000, official.bias * 1000 + official.template * 999,
                               official.weights, official.fps, official.template)
    infer = case["dir"] / "infer_mm.npz"
    scaled.save_npz(infer, with_vertices=False)                                      # shape-key form
    assert_user_error(run(case, source=infer), "infer_mm.npz' is about 1000× the template's size")
    assert not case["out"].exists()


def test_retarget_fps_has_every_command_s_range_and_wording(case):
    for fps in ("100000", "0", "nan"):
        assert_user_error(run(case, fps=fps), "--fps must be a frame rate above 0 and at most 1000 frames per second")


def test_retarget_checks_the_audio_before_the_target_and_the_fit(case):
    bad = case["dir"] / "speech.wav"
    bad.write_bytes(b"this is no recording " * 100)
    not_a_mesh = case["dir"] / "head.obj"
    not_a_mesh.write_text("not a mesh\n")     # read in the fit's stage: the audio must be refused first
    assert_user_error(run(case, audio=bad, target=not_a_mesh), "speech.wav' is not a valid WAV file")


def _still(anim, frame, count):
    """``anim``'s pose at ``frame`` held for ``count`` frames."""
    return ShapeKeyAnimation(anim.basis, anim.bias, np.repeat(anim.weights[frame:frame + 1], count, 0),
                             anim.fps, anim.template)


def test_keysolve_a_still_or_one_frame_motion_gives_still_keys_and_no_share(arkit_fit, arkit, official):
    from voca_addon.core.character import transfer
    mesh = arkit["mesh"]
    held = transfer.transfer(_still(official, 150, 30), arkit_fit, mesh.vertices, mesh.faces)
    one = transfer.transfer(_still(official, 150, 1), arkit_fit, mesh.vertices, mesh.faces)
    rank0 = ShapeKeyAnimation(held.basis[:0], held.vertices([0])[0] - held.template, held.weights[:, :0],
                              held.fps, held.template)      # what a still source factorises to: no key
    solved = [keysolve.solve_keys(a, arkit["keys"], arkit["names"]) for a in (held, one, rank0)]
    for s in solved:
        assert np.ptp(s.weights, axis=0).max() < 1e-5          # still keys (ADMM's tolerance; measured: 0)
        assert np.isnan(s.report["explained"]) and s.report["motion_rms"] < 1e-9
        assert "the clip barely moves about its mean pose" in keysolve.explained_text(s.report, 1e3)
    np.testing.assert_allclose(solved[1].weights[0], solved[0].weights[0], atol=1e-5)   # measured: 0
    np.testing.assert_allclose(solved[2].weights, solved[0].weights, atol=1e-5)      # measured: 1.5e-7


def test_keysolve_explained_text_says_why_a_share_is_not_meaningful(tmp_path):
    report = dict(explained=0.834, motion_rms=2e-3, mean_error=3e-4)
    assert keysolve.explained_text(report, 1e3) == "83% of the motion explained"
    text = keysolve.explained_text(dict(report, explained=-21.32), 1e3)
    assert "%" not in text and "no share of the motion explained" in text
    assert "the keys' error (0.30 mm mean) is larger than the clip's motion about its mean pose (2.00 mm RMS)" in text
    still = dict(report, motion_rms=0.0, explained=float("nan"))
    assert "barely moves" in keysolve.explained_text(still, 1e3)
    from voca_addon.core.character import arkit
    arkit.write_curves_json(tmp_path / "c.json", np.zeros((2, 1)), ["jawOpen"], 60.0, still)   # --curves .json
    text = (tmp_path / "c.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))["report"]["explained"] is None


@pytest.mark.parametrize("frames", [slice(0, 1), slice(40, 52)])
def test_retarget_one_frame_and_short_sources_with_target_keys(case, frames):
    source = case["dir"] / "clip.npz"
    np.savez(source, vertices=np.load(case["source"])["vertices"][frames], fps=60.0)
    args = argparse.Namespace(source=str(source), target=str(case["target"]), landmarks=str(case["pairs"]),
                              target_keys=str(case["keys"]), template=str(case["template"]), fps=None)
    result = retarget_cli.compute(args)
    count = frames.stop - frames.start
    assert result.solution.weights.shape == (count, 51)
    line = retarget_cli._report(result)
    assert ("of the motion explained" in line and "% of the motion" not in line), line
