"""A real non-FLAME face (the ARKit reference mesh, 1220 vertices): fit residuals and the transferred lips."""
import numpy as np
import pytest

from voca_addon.core.character import landmarks as lm, transfer

UPPER, LOWER = lm.IBUG_INNER_LIP_UPPER, lm.IBUG_INNER_LIP_LOWER


def test_fit_arkit_face_landmark_and_surface_residuals(arkit_fit):
    r = arkit_fit.residuals
    print(f"ARKit face fit: scale {r['scale']:.4f} ({r['unit']}); landmarks after similarity "
          f"{r['landmarks_aligned']['mean']:.2f} mm mean / {r['landmarks_aligned']['max']:.2f} max, after "
          f"registration {r['landmarks_registered']['mean']:.2f} / {r['landmarks_registered']['max']:.2f}; "
          f"surface {r['surface']['mean']:.2f} mean / {r['surface']['p95']:.2f} p95 mm over "
          f"{r['matched']:.0%} of FLAME")
    assert r["unit"] == "metres"
    assert 3.0 < r["landmarks_aligned"]["mean"] < 5.0             # the data's README: 3.8 mm (a different face)
    assert r["landmarks_registered"]["mean"] < 0.5 * r["landmarks_aligned"]["mean"]
    assert r["landmarks_registered"]["max"] < 1.0
    assert r["surface"]["p95"] < 2.0


def test_transfer_arkit_face_inner_lips_follow_flames(official, arkit, arkit_fit):
    target = transfer.transfer(official, arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces).vertices()
    flame = official.vertices()
    ids = arkit["target_ids"]
    flame_open = np.linalg.norm(flame[:, lm.FLAME_IBUG68[UPPER]] - flame[:, lm.FLAME_IBUG68[LOWER]], axis=1)
    target_open = np.linalg.norm(target[:, ids[UPPER]] - target[:, ids[LOWER]], axis=1)
    r = np.corrcoef(flame_open, target_open)[0, 1]
    print(f"inner-lip opening: FLAME {flame_open.min() * 1e3:.1f}–{flame_open.max() * 1e3:.1f} mm, target "
          f"{target_open.min() * 1e3:.1f}–{target_open.max() * 1e3:.1f} mm, r = {r:.4f}")
    assert r >= 0.95
    assert 0.7 < np.ptp(target_open) / np.ptp(flame_open) < 1.4


def test_transfer_arkit_face_rest_shape_is_unchanged(official, arkit, arkit_fit):
    result = transfer.transfer(official, arkit_fit, arkit["mesh"].vertices, arkit["mesh"].faces)
    np.testing.assert_array_equal(result.template, arkit["mesh"].vertices.astype(np.float32))
    np.testing.assert_array_equal(result.weights, official.weights)
    far = np.linalg.norm(result.basis, axis=(0, 2)) == 0                   # no motion far from the mouth
    assert far.sum() == 0 or far.sum() < len(far)


def test_fit_reports_its_progress_and_stops_when_the_callback_raises(flame, arkit):
    """The Blender worker's progress bar and Esc: the share of NICP's schedule done, rising from 0; an
    exception from the callback (a cancel) stops the fit there."""
    from voca_addon.core.character import fit as fitting, nicp
    args = (flame.vertices, flame.faces, arkit["mesh"].vertices, arkit["mesh"].faces, arkit["flame_ids"],
            arkit["target_ids"])
    seen = []
    fitting.fit_target(*args, progress=seen.append)
    assert seen[0] == 0.0 and seen == sorted(seen) and seen[-1] < 1.0 and len(seen) >= len(nicp.ALPHAS)

    class Stop(Exception):
        pass

    calls = []

    def stop_after_two(fraction):
        calls.append(fraction)
        if len(calls) > 2:
            raise Stop
    with pytest.raises(Stop):
        fitting.fit_target(*args, progress=stop_after_two)
    assert len(calls) == 3
