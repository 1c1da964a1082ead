"""A FLAME-FORMAT model for the tests (no FLAME model is available here), and an independent LBS reference.

:func:`write_flame_format_model` pickles a dict with FLAME's keys and shapes (``generic_model.pkl``
layout: numpy arrays, ``J_regressor`` a scipy CSC matrix, ``kintree_table`` with 2³² − 1 as the root's
parent) on the real FLAME template (``FLAME_sample.ply``, 5023 vertices), with a plausible structure taken
from real FLAME regions (``FLAME_masks.pkl``): eye joints at the eyeball centres, skinning weights that
give the lower neck to the root, the jaw region to the jaw, the eyeballs to the eyes and the rest to the
neck. Blend shapes are random (fixed seed): the tests check formulas, not anatomy.

:func:`reference_lbs` is the published SMPL / FLAME skinning written out directly (one joint and one
vertex weight at a time, rotations from ``scipy.spatial.transform``), independent of
``voca_addon.core.flame.flame_model``.
"""
from __future__ import annotations

import pickle

import numpy as np
from scipy.sparse import csc_matrix
from scipy.spatial.transform import Rotation

NUM_EXPRESSION = 100
NUM_SHAPE = 300
PARENTS = (-1, 0, 1, 1, 1)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def flame_format_arrays(template_vertices, faces, masks, seed=0, shape_std=1e-3, pose_std=2e-3):
    """The arrays of a FLAME-format model on the given template (metres) and FLAME region masks."""
    rng = np.random.default_rng(seed)
    v = np.asarray(template_vertices, dtype=np.float64)
    n = v.shape[0]
    neck = np.asarray(masks["neck"])
    eyes = [np.asarray(masks["left_eyeball"]), np.asarray(masks["right_eyeball"])]
    lips = np.asarray(masks["lips"])
    neck_base = neck[v[neck, 1] < np.percentile(v[neck, 1], 30)]
    ears = np.concatenate([masks["left_ear"], masks["right_ear"]])
    rows = [neck_base, neck, ears, eyes[0], eyes[1]]                        # root, neck, jaw, eyes
    regressor = np.zeros((5, n))
    for k, idx in enumerate(rows):
        regressor[k, idx] = 1.0 / len(idx)
    joints = regressor @ v
    w = np.zeros((n, 5))
    w[:, 0] = _sigmoid((joints[0, 1] + 0.01 - v[:, 1]) / 0.008)            # lower neck → root
    below_mouth = _sigmoid((v[lips, 1].mean() - v[:, 1]) / 0.006) * _sigmoid((v[:, 2] - joints[2, 2]) / 0.01)
    w[:, 2] = (1 - w[:, 0]) * below_mouth                                   # chin and lower lip → jaw
    w[:, 1] = 1 - w[:, 0] - w[:, 2]                                         # the rest → neck
    for k, idx in ((3, eyes[0]), (4, eyes[1])):
        w[idx] = 0.0
        w[idx, k] = 1.0
    return {
        "v_template": v,
        "f": np.asarray(faces, dtype=np.uint32),
        "shapedirs": rng.standard_normal((n, 3, NUM_SHAPE + NUM_EXPRESSION)) * shape_std,
        "posedirs": rng.standard_normal((n, 3, 36)) * pose_std,
        "J_regressor": csc_matrix(regressor),
        "weights": w,
        "kintree_table": np.array([[2 ** 32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
    }


def write_flame_format_model(path, shared_data, seed=0, **overrides):
    """Pickle a FLAME-format model (protocol 2, like FLAME's own files) and return its arrays."""
    from voca_addon.core.flame.meshio import read_mesh
    mesh = read_mesh(shared_data / "flame" / "FLAME_sample.ply")
    with open(shared_data / "flame" / "FLAME_masks.pkl", "rb") as handle:
        masks = pickle.load(handle, encoding="latin1")                      # real data file, tests only
    arrays = flame_format_arrays(mesh.vertices, mesh.faces, masks, seed=seed)
    arrays.update(overrides)
    with open(path, "wb") as handle:
        pickle.dump(arrays, handle, protocol=2)
    return arrays


def reference_lbs(arrays, pose, betas=None, expression=None, correctives=True, joints=None):
    """FLAME's posed vertices [V, 3] for one pose [5, 3], written straight from the paper's equations.

    ``joints`` [5, 3] replaces the regressed joints (a rig whose joints were regressed from another head).
    """
    v_template = np.asarray(arrays["v_template"], dtype=np.float64)
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)
    coeffs = np.zeros(shapedirs.shape[2])
    if betas is not None:
        coeffs[:len(betas)] = betas
    if expression is not None:
        coeffs[NUM_SHAPE:NUM_SHAPE + len(expression)] = expression
    t_p = v_template + np.einsum("vcl,l->vc", shapedirs, coeffs)            # T + B_S + B_E
    regressor = arrays["J_regressor"].toarray()
    joints = regressor @ t_p if joints is None else np.asarray(joints)     # J(β, ψ)
    rotations = [Rotation.from_rotvec(p).as_matrix() for p in np.asarray(pose, dtype=np.float64)]
    if correctives:
        feature = np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
        t_p = t_p + np.einsum("vcp,p->vc", np.asarray(arrays["posedirs"]), feature)
    world = []
    for k in range(5):                                                      # G_k along the chain
        local = np.eye(4)
        local[:3, :3] = rotations[k]
        local[:3, 3] = joints[k] - (joints[PARENTS[k]] if PARENTS[k] >= 0 else 0.0)
        world.append(local if PARENTS[k] < 0 else world[PARENTS[k]] @ local)
    out = np.zeros_like(t_p)
    homogeneous = np.concatenate([t_p, np.ones((t_p.shape[0], 1))], axis=1)
    for k in range(5):                                                      # Σ_k w_k G_k [I | −J_k] v
        unposed = np.eye(4)
        unposed[:3, 3] = -joints[k]
        out += arrays["weights"][:, k:k + 1] * (homogeneous @ (world[k] @ unposed).T)[:, :3]
    return out
