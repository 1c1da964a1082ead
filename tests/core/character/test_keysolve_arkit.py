"""The ARKit face driven by its own 51 keys: bounded weights that reproduce the transferred lip motion."""
import numpy as np
import pytest
from scipy.optimize import lsq_linear

from voca_addon.core.animation.shapekeys import ShapeKeyAnimation
from voca_addon.core.character import keysolve, landmarks as lm, transfer
from voca_addon.core.errors import InputError


@pytest.fixture(scope="module")
def transferred(official, arkit, arkit_fit):
    return transfer.transfer(official, arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces)


@pytest.fixture(scope="module")
def solution(transferred, arkit):
    return keysolve.solve_keys(transferred, arkit["keys"], arkit["names"])


def test_keysolve_weights_are_bounded_and_reproduce_the_lips(solution, transferred, arkit, official, arkit_fit):
    w = solution.weights
    assert w.shape == (official.num_frames, 51) and w.min() >= 0.0 and w.max() <= 1.0
    keyed = arkit["mesh"].vertices[None] + np.einsum("fj,jvd->fvd", w, arkit["keys"])
    ids = arkit["target_ids"]
    flame = official.vertices()
    flame_open = np.linalg.norm(flame[:, lm.FLAME_IBUG68[62]] - flame[:, lm.FLAME_IBUG68[66]], axis=1)
    keyed_open = np.linalg.norm(keyed[:, ids[62]] - keyed[:, ids[66]], axis=1)
    jaw = w[:, arkit["names"].index("jawOpen")]
    scale = arkit_fit.similarity.scale
    rep = solution.report
    print(f"ARKit keys: error {rep['mean_error'] / scale * 1e3:.2f} mm mean, {rep['p95_error'] / scale * 1e3:.2f} "
          f"mm p95 over {len(solution.region)} vertices; explained {rep['explained']:.3f}; "
          f"keyed lip opening r = {np.corrcoef(flame_open, keyed_open)[0, 1]:.3f}; "
          f"jawOpen r = {np.corrcoef(flame_open, jaw)[0, 1]:.3f}; {rep['iterations']} ADMM iterations; "
          f"{len(solution.openings)} opening pairs, {rep['opening_error'] / scale * 1e3:.2f} mm error there")
    assert np.corrcoef(flame_open, keyed_open)[0, 1] >= 0.95
    assert np.corrcoef(flame_open, jaw)[0, 1] >= 0.9
    assert rep["mean_error"] / scale < 1.5e-3 and rep["explained"] > 0.6


def test_keysolve_matches_scipy_bounded_least_squares(transferred, arkit, solution):
    """Without smoothness the ADMM solution's cost equals scipy's lsq_linear per frame, on the same system:
    the region's coordinates, the openings' relative displacements weighted by √κ, and the jaw preference
    as one row √(μ G⁰_jj) per key other than jawOpen / mouthClose / mouthPress."""
    clip = ShapeKeyAnimation(transferred.basis, transferred.bias, transferred.weights[::15], 4.0,
                             transferred.template, transferred.names)
    ours = keysolve.solve_keys(clip, arkit["keys"], arkit["names"], region=solution.region, smoothness=0.0)
    a, b = ours.openings.T
    assert len(a) > 0 and ours.report["opening_weight"] > 0 and ours.report["jaw_key"] == "jawOpen"
    root = np.sqrt(ours.report["opening_weight"])

    def rows(field):                                   # [..., V, 3] → the augmented rows [..., 3(R + P)]
        parts = [field[..., solution.region, :], root * (field[..., a, :] - field[..., b, :])]
        return np.concatenate(parts, axis=-2).reshape(*field.shape[:-2], -1)
    keys, motion = rows(arkit["keys"]), rows(clip.vertices() - clip.template[None])
    free = [arkit["names"].index(n) for n in ("jawOpen", "mouthClose", "mouthPressLeft", "mouthPressRight")]
    prior = np.sqrt(keysolve.JAW_PREFERENCE * np.sum(keys ** 2, axis=1))
    prior[free] = 0.0
    keys = np.concatenate([keys, np.diag(prior)], axis=1)                  # [J, 3(R + P) + J]
    for f in range(clip.num_frames):
        target = np.r_[motion[f], np.zeros(len(prior))]
        reference = lsq_linear(keys.T, target, bounds=(0, 1), tol=1e-12).x
        cost = lambda c: np.sum((c @ keys - target) ** 2)
        assert cost(ours.weights[f].astype(np.float64)) <= cost(reference) * (1 + 1e-3) + 1e-12


def test_keysolve_openings_are_the_inner_lips(solution, arkit):
    """The openings found from the motion alone pair the upper with the lower lip across the mouth."""
    lips = arkit["target_ids"][48:68]
    mesh = arkit["mesh"].vertices
    a, b = solution.openings.T
    assert len(a) >= 3
    mouth = mesh[lips].mean(axis=0)
    width = np.linalg.norm(mesh[arkit["target_ids"][54]] - mesh[arkit["target_ids"][48]])
    assert np.all(np.linalg.norm((mesh[a] + mesh[b]) / 2 - mouth, axis=1) < 0.5 * width)
    jaw = arkit["keys"][arkit["names"].index("jawOpen"), :, 1]              # +Y up
    opening = abs(jaw[arkit["target_ids"][62]] - jaw[arkit["target_ids"][66]])
    assert np.all(np.abs(jaw[a] - jaw[b]) > 0.5 * opening)                   # one on each lip: jawOpen parts them


def test_keysolve_openings_make_the_jaw_key_carry_the_opening(transferred, arkit, official):
    """The same solve without the openings' rows fits the region closer but leaves jawOpen off the lips
    (both without the jaw preference, which test_keysolve_jaw.py measures)."""
    solution = keysolve.solve_keys(transferred, arkit["keys"], arkit["names"], jaw_preference=0.0)
    plain = keysolve.solve_keys(transferred, arkit["keys"], arkit["names"], opening_weight=0.0,
                                jaw_preference=0.0)
    assert len(plain.openings) == 0 and plain.report["opening_weight"] == 0.0
    flame = official.vertices()
    flame_open = np.linalg.norm(flame[:, lm.FLAME_IBUG68[62]] - flame[:, lm.FLAME_IBUG68[66]], axis=1)
    jaw = arkit["names"].index("jawOpen")
    r = [np.corrcoef(flame_open, s.weights[:, jaw])[0, 1] for s in (plain, solution)]
    print(f"jawOpen r without / with the openings: {r[0]:.3f} / {r[1]:.3f}; explained "
          f"{plain.report['explained']:.3f} / {solution.report['explained']:.3f}")
    assert r[0] < 0.8 <= 0.9 <= r[1]
    assert plain.report["mean_error"] < solution.report["mean_error"]


def test_keysolve_openings_do_not_depend_on_units_or_vertex_order(transferred, arkit, solution):
    """The openings come from the motion and the rest shape alone: the rig in cm, vertices shuffled."""
    order = np.random.default_rng(3).permutation(transferred.num_vertices)
    moved = ShapeKeyAnimation(100.0 * transferred.basis[:, order], 100.0 * transferred.bias[order],
                              transferred.weights, transferred.fps, 100.0 * transferred.template[order],
                              transferred.names)
    other = keysolve.solve_keys(moved, 100.0 * arkit["keys"][:, order], arkit["names"])
    new_id = np.argsort(order)
    assert {tuple(sorted(p)) for p in new_id[solution.openings]} == {tuple(sorted(p)) for p in other.openings}
    np.testing.assert_allclose(other.weights, solution.weights, atol=2e-3)


def test_keysolve_smoothness_reduces_frame_to_frame_change(transferred, arkit, solution):
    rough = keysolve.solve_keys(transferred, arkit["keys"], arkit["names"], region=solution.region, smoothness=0.0)
    smooth = keysolve.solve_keys(transferred, arkit["keys"], arkit["names"], region=solution.region, smoothness=1.0)
    assert np.abs(np.diff(smooth.weights, axis=0)).sum() < np.abs(np.diff(rough.weights, axis=0)).sum()


def test_keysolve_refuses_keys_of_another_mesh(transferred, arkit):
    with pytest.raises(InputError, match="do not match"):
        keysolve.solve_keys(transferred, arkit["keys"][:, :100], arkit["names"])
    with pytest.raises(InputError, match="none of the keys"):
        keysolve.solve_keys(transferred, np.zeros_like(arkit["keys"]), arkit["names"])


def test_keysolve_errors_in_chunks_equal_the_whole_computation(monkeypatch):
    """The reproduction errors are measured in frame blocks (an hour-long clip needs no [F, 3n] array):
    the same numbers as over all frames at once; past P95_VALUES the 95th percentile uses every k-th frame."""
    rng = np.random.default_rng(3)
    frames, r, keys, d = 500, 40, 6, 5
    w, basis = rng.standard_normal((frames, d)), rng.standard_normal((d, 3 * r + 6))
    bias, b = rng.standard_normal(3 * r + 6), rng.standard_normal((keys, 3 * r + 6))
    c = rng.uniform(0, 1, (frames, keys))
    motion = w @ basis + bias
    residual = c @ b - motion
    dist = np.linalg.norm(residual[:, :3 * r].reshape(frames, r, 3), axis=2)
    variance = ((motion[:, :3 * r] - motion[:, :3 * r].mean(axis=0)) ** 2).sum()
    monkeypatch.setattr(keysolve, "ERROR_CHUNK", 64)
    got = keysolve._errors(c, b, w, basis, bias, r)
    assert got["mean_error"] == pytest.approx(dist.mean(), rel=1e-12)
    assert got["max_error"] == pytest.approx(dist.max(), rel=1e-12)
    assert got["p95_error"] == pytest.approx(np.percentile(dist, 95), rel=1e-6)
    assert got["explained"] == pytest.approx(1 - (residual[:, :3 * r] ** 2).sum() / variance, rel=1e-10)
    assert got["opening_error"] == pytest.approx(np.linalg.norm(residual[:, 3 * r:].reshape(frames, 2, 3),
                                                                axis=2).mean(), rel=1e-12)
    monkeypatch.setattr(keysolve, "P95_VALUES", frames * r // 4)          # every 4th frame
    assert keysolve._errors(c, b, w, basis, bias, r)["p95_error"] == pytest.approx(
        np.percentile(dist[::4], 95), rel=1e-6)
