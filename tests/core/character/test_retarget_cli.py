"""``python -m voca_addon retarget``: each bad input the issue lists → one clear line, exit 2, nothing written.
Run with bpy and tensorflow blocked: every refusal happens before Blender is needed."""
import shutil

import numpy as np
import pytest

from tests.core.test_cli import assert_user_error, cli
from voca_addon.core.character import landmarks as lm
from voca_addon.core.flame import meshio


@pytest.fixture
def case(tmp_path, shared_data):
    pairs = tmp_path / "pairs.txt"
    lm.write_pairs(pairs, np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int),
                   np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int))
    return dict(dir=tmp_path, pairs=pairs, out=tmp_path / "out.blend",
                source=shared_data / "voca_official" / "output_test_sentence_cond3.npz",
                target=shared_data / "arkit" / "ARKit_blendshapes" / "Neutral.obj",
                template=shared_data / "flame" / "FLAME_sample.ply",
                keys=shared_data / "arkit" / "ARKit_blendshapes")


def run(case, **over):
    source = over.pop("source", case["source"])
    args = dict(target=case["target"], landmarks=case["pairs"], template=case["template"], out=case["out"])
    args.update(over)
    flags = [x for k, v in args.items() if v is not None for x in (f"--{k.replace('_', '-')}", v)]
    return cli("retarget", source, *flags)


def _pairs(case, flame_ids, target_ids, name="bad.txt"):
    path = case["dir"] / name
    lm.write_pairs(path, flame_ids, target_ids)
    return path


def test_retarget_refuses_a_target_that_is_not_a_mesh(case):
    bogus = case["dir"] / "head.obj"
    bogus.write_text("this is not a mesh\n")
    assert_user_error(run(case, target=bogus), "contains no vertices")
    assert not case["out"].exists()


def test_retarget_refuses_a_target_without_faces(case):
    cloud = case["dir"] / "cloud.obj"
    meshio.write_obj(cloud, meshio.read_mesh(case["target"]).vertices)
    assert_user_error(run(case, target=cloud), "has no faces")


def test_retarget_refuses_bad_landmark_pairs(case, shared_data):
    f = np.loadtxt(shared_data / "arkit" / "FLAME_landmarks.txt", dtype=int)
    t = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    assert_user_error(run(case, landmarks=_pairs(case, f[:3], t[:3])), "3 landmark pairs", "at least 4")
    assert_user_error(run(case, landmarks=_pairs(case, f, np.r_[t[:-1], 5000])), "id 5000 is out of range",
                      "1220 vertices")
    assert_user_error(run(case, landmarks=_pairs(case, f[[8, 8, 8, 8]] + [0, 1, 2, 3], t[[8] * 4])),
                      f"target vertex {t[8]} is paired with FLAME vertices", "each target vertex may pair once")
    mirror = np.r_[t[16::-1], t[26:16:-1], t[27:31], t[35:30:-1], t[45:41:-1], t[47:45:-1], t[39:35:-1],
                   t[41:39:-1], t[54:47:-1], t[59:54:-1], t[64:59:-1], t[67:64:-1]]
    assert_user_error(run(case, landmarks=_pairs(case, f, mirror)), "mirrored")
    assert not case["out"].exists()


def test_retarget_refuses_a_target_far_from_flame_size_and_says_the_scale(case):
    mesh = meshio.read_mesh(case["target"])
    giant = case["dir"] / "giant.obj"
    meshio.write_obj(giant, mesh.vertices * 10.0, mesh.faces)
    assert_user_error(run(case, target=giant), "9.876× FLAME's size")


def test_retarget_refuses_key_objs_of_another_topology(case):
    keys = case["dir"] / "keys"
    keys.mkdir()
    shutil.copy(case["keys"] / "jawOpen.obj", keys / "jawOpen.obj")
    shutil.copy(case["template"], keys / "flame.ply")
    meshio.write_obj(keys / "mouthClose.obj", meshio.read_mesh(case["template"]).vertices)
    assert_user_error(run(case, target_keys=keys), "mouthClose.obj' has 5023 vertices", "target's topology")


def test_retarget_refuses_curves_without_keys_and_a_missing_source(case):
    assert_user_error(run(case, curves=case["dir"] / "c.csv"), "--curves needs --target-keys")
    assert_user_error(run(case, source=case["dir"] / "nothing.npz"), "SOURCE", "was not found")


def test_retarget_reads_an_infer_result_without_vertices(case, tmp_path, official):
    """An ``infer --no-vertices`` .npz (basis, bias, weights) gives the same motion as the frames."""
    import argparse
    from voca_addon.cli import retarget as retarget_cli
    from voca_addon.core.character import retarget as core_retarget
    compact = tmp_path / "infer.npz"
    official.save_npz(compact, with_vertices=False)
    anim = core_retarget.source_animation(str(compact), case["template"])
    frames = core_retarget.source_animation(str(case["source"]), case["template"])
    np.testing.assert_allclose(anim.vertices(), frames.vertices(), atol=2e-6)
    args = argparse.Namespace(source=str(compact), target=str(case["target"]), landmarks=str(case["pairs"]),
                              target_keys=None, template=str(case["template"]), fps=None)
    result = retarget_cli.compute(args)
    assert result.motion.num_frames == official.num_frames and result.solution is None


def test_retarget_refuses_auto_landmarks_on_a_mesh_that_is_no_head(case):
    grid = np.linspace(-0.1, 0.1, 20)
    x, y = np.meshgrid(grid, grid)
    ids = np.arange(x.size).reshape(x.shape)
    quads = np.c_[ids[:-1, :-1].ravel(), ids[1:, :-1].ravel(), ids[1:, 1:].ravel(), ids[:-1, 1:].ravel()]
    plane = case["dir"] / "plane.obj"
    meshio.write_obj(plane, np.c_[x.ravel(), y.ravel(), np.zeros(x.size)],
                     np.r_[quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    assert_user_error(run(case, target=plane, landmarks="auto"), "could not guess the landmarks",
                      "Mark the 68 landmarks by hand")
    assert not case["out"].exists()


def test_retarget_guess_landmarks_needs_auto_and_a_missing_pairs_file_says_auto(case):
    assert_user_error(run(case, guess_landmarks=case["dir"] / "guess.txt"), "use it with --landmarks auto")
    assert_user_error(run(case, landmarks=case["dir"] / "none.txt"), "--landmarks", "was not found",
                      "--landmarks auto")
    assert_user_error(run(case, landmarks="auto", guess_landmarks=case["dir"] / "guess.csv"), "--guess-landmarks")
    assert not (case["dir"] / "guess.txt").exists()


def test_retarget_compute_with_auto_landmarks_fits_from_the_guess(case, shared_data):
    """``--landmarks auto`` (no bpy needed up to here): the pairs are guessed, the fit runs from them, and
    the line the command prints says they are a guess and how well FLAME fitted."""
    import argparse
    from voca_addon.cli import retarget as retarget_cli
    args = argparse.Namespace(source=str(case["source"]), target=str(case["target"]), landmarks="auto",
                              target_keys=None, template=str(case["template"]), fps=None)
    result = retarget_cli.compute(args)
    given = np.loadtxt(shared_data / "arkit" / "ARKit_landmarks.txt", dtype=int)
    vertices = result.target.vertices
    near = np.linalg.norm(vertices[result.guess.target_ids] - vertices[given], axis=1).mean() * 1e3
    assert near < 4.5 and result.fit.residuals["landmarks_registered"]["mean"] < 0.2
    line = retarget_cli.guess_report(result.guess, "pairs.txt")
    assert line.startswith("landmarks: an AUTOMATIC FIRST GUESS") and "pairs.txt" in line
