"""``batch --target``: a clip's lip corrections go onto the character with VOCA's fields transferred once,
kept apart, equal to the ``retarget`` path (:func:`voca_addon.core.character.transfer.transfer`)."""
import numpy as np

from voca_addon.cli.batch.character import BatchCharacter, on_character, solve_keys
from voca_addon.core.animation.shapekeys import Corrections
from voca_addon.core.character import keyfiles, landmarks as lm, transfer
from voca_addon.core.character.retarget import Character


def test_batch_character_transfers_a_clips_corrections(official, arkit, arkit_fit):
    mesh = arkit["mesh"]
    matrix = transfer.transfer_matrix(arkit_fit, mesh.vertices, mesh.faces)
    moved = transfer.transfer_fields(np.concatenate([official.bias[None], official.basis]), arkit_fit, matrix)
    keys = keyfiles.KeySet(mesh.vertices, arkit["keys"], arkit["names"])
    ch = BatchCharacter("Neutral", Character(mesh, arkit_fit, keys), matrix, official.basis, official.bias,
                        np.ascontiguousarray(moved[1:]), np.ascontiguousarray(moved[0]))
    lower_lip = official.template[lm.FLAME_IBUG68[57]]                     # a stand-in closure: the lower lip up 5 mm
    near = np.linalg.norm(official.template - lower_lip, axis=1) < 0.01
    lips = np.zeros((1, official.num_vertices, 3), np.float32)
    lips[0, near, 1] = 0.005
    weights = np.zeros((official.num_frames, 1), np.float32)
    weights[60:80, 0] = 1.0
    clip = official.with_corrections(Corrections(lips, weights, ("voca_lips_close",)))
    got = on_character(ch, clip)
    expected = transfer.transfer(clip, arkit_fit, mesh.vertices, mesh.faces, matrix=matrix)
    assert got.corrections is not None and got.corrections.names == ("voca_lips_close",)
    np.testing.assert_array_equal(got.corrections.weights, weights)
    np.testing.assert_allclose(got.corrections.basis, expected.corrections.basis, atol=1e-7)
    np.testing.assert_allclose(got.vertices([0, 70]), expected.vertices([0, 70]), atol=1e-6)
    np.testing.assert_array_equal(got.exact().weights, on_character(ch, official).weights)
    assert on_character(ch, official).corrections is None
    solved, plain = solve_keys(ch, got), solve_keys(ch, on_character(ch, official))
    assert np.abs(solved.weights[70] - plain.weights[70]).max() > 1e-3      # the solve sees the correction
    np.testing.assert_allclose(solved.weights[:30], plain.weights[:30], atol=0.02)
