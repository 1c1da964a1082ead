"""The FLAME head model: reading a model pickle and its linear blend skinning (the rig's maths).

FLAME (Li, Bolkart, Black, Li, Romero: *Learning a model of facial shape and expression from 4D scans*,
SIGGRAPH Asia 2017) is SMPL's formulation (Loper et al. 2015) for a head with ``K = 5`` joints
(0 root/global, 1 neck, 2 jaw, 3 left eye, 4 right eye):

1. shape and expression blend shapes   ``T_P = T̄ + B_S(β; S) + B_E(ψ; E)``            (Eq. 2)
2. joint regression                    ``J = 𝒥 · (T̄ + B_S + B_E)``                    [K, 3]
3. pose correctives                    ``B_P(θ; P) = Σ_n (vec(R(θ)) − vec(R(θ*)))_n P_n`` over the
   non-root joints, ``R(θ*) = I``                                                     (Eq. 4)
4. linear blend skinning               ``v_i = Σ_k w_ik G'_k(θ, J) (T_P,i + B_P,i)``  (Eq. 1)
   with ``G_k = Π_{j ∈ A(k)} [R(θ_j) | J_j − J_parent(j)]`` (the kinematic chain) and
   ``G'_k = G_k · [I | −J_k]`` (the rest pose removed).

``R(θ)`` is Rodrigues' formula for a rotation vector θ (axis × angle, radians). A model pickle holds
``v_template`` T̄ [V, 3], ``shapedirs`` [V, 3, 300 + E] (identity components first, then expression),
``posedirs`` [V, 3, 9 (K − 1)], ``J_regressor`` 𝒥 [K, V] (scipy sparse), ``weights`` W [V, K],
``kintree_table`` [2, K] (row 0: parent ids, root's is 2³² − 1), ``f`` [T, 3]; FLAME 2020 / 2023 store
some of them as chumpy objects, which :mod:`..formats.safepickle` reads without chumpy.

Units: FLAME's (metres, Y up, the face looking along +Z). Poses are rotation vectors in radians, one
row per joint in the joint order above (``pose[..., 1, :]`` is the neck, FLAME's ``pose[3:6]``).

Contract: numpy + stdlib (+ :mod:`..formats.safepickle`); pure functions, any thread; reads files, writes
nothing. Errors a user can cause (not a FLAME model, a corrupt one) raise ``ModelFileError``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, MeshError, ModelFileError
from ..formats.safepickle import safe_load, to_array

JOINT_NAMES = ("root", "neck", "jaw", "eye_left", "eye_right")    # FLAME's joint order
NUM_JOINTS = len(JOINT_NAMES)
NUM_SHAPE = 300                     # shapedirs[:, :, :300] are identity components, the rest expression
POSE_FEATURES = 9 * (NUM_JOINTS - 1)  # vec(R − I) of the four non-root joints
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
ROOT_PARENT = 2 ** 32 - 1           # kintree_table's "no parent" (uint32 −1)
WEIGHT_SUM_TOLERANCE = 1e-3         # skinning weights of a vertex must sum to 1 within this
SKIN_CHUNK = 64                     # frames skinned at once (memory: chunk · V · K · 12 floats)


@dataclass(frozen=True)
class FlameModel:
    """A FLAME model's arrays (float64 unless noted).

    Attributes
    ----------
    v_template : [V, 3]   mean head T̄, metres.
    shapedirs : [V, 3, S + E]   identity (first ``num_shape``) and expression components, metres per unit.
    posedirs : [V, 3, 36]   pose-corrective blend shapes P, metres per unit of vec(R − I).
    J_regressor : [K, V]   joint regressor 𝒥 (dense; each row sums to 1 in FLAME).
    weights : [V, K]   skinning weights W (rows sum to 1).
    parents : int64 [K]   parent joint of each joint, −1 for the root.
    faces : int64 [T, 3]   triangles.
    num_shape : int   identity components in ``shapedirs`` (300 in FLAME, fewer when it has fewer).
    path : str   where it was read from ('' when built in memory).
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    num_shape: int
    path: str = ""

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_expression(self) -> int:
        return int(self.shapedirs.shape[2]) - self.num_shape

    @property
    def expression_basis(self) -> np.ndarray:
        """float64 [V, 3, E]: the expression components B_E."""
        return self.shapedirs[:, :, self.num_shape:]

    @property
    def shape_basis(self) -> np.ndarray:
        """float64 [V, 3, S]: the identity components B_S."""
        return self.shapedirs[:, :, :self.num_shape]


# ---------------------------------------------------------------------------- reading

def load_flame_model(path) -> FlameModel:
    """Read a FLAME model pickle (``generic_model.pkl``, FLAME 2020 / 2023) with the restricted unpickler.

    Raises
    ------
    ModelFileError
        Missing / unsafe / corrupt file, a pickle that is not a FLAME model (names the missing key), or
        arrays whose shapes disagree (names them).
    """
    path = os.fspath(path)
    data = safe_load(path)
    if not isinstance(data, dict):
        raise ModelFileError(f"'{path}' is not a FLAME model (it holds a {type(data).__name__}, not a dict "
                             "of arrays). Choose FLAME's generic_model.pkl (or flame2023.pkl).")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelFileError(f"'{path}' is not a FLAME model: it has no {', '.join(missing)}. Choose "
                             "FLAME's generic_model.pkl (or flame2023.pkl) from https://flame.is.tue.mpg.de.")
    arrays = {k: to_array(data[k]) for k in REQUIRED_KEYS}
    return _checked_model(arrays, path)


def _checked_model(a: dict, path: str) -> FlameModel:
    """Build a :class:`FlameModel` from raw arrays, checking every shape against ``v_template``."""
    v_template = np.asarray(a["v_template"], dtype=np.float64)
    v = v_template.shape[0] if v_template.ndim == 2 else -1
    expected = {"v_template": (v, 3), "shapedirs": (v, 3, None), "posedirs": (v, 3, POSE_FEATURES),
                "J_regressor": (NUM_JOINTS, v), "weights": (v, NUM_JOINTS), "kintree_table": (2, NUM_JOINTS),
                "f": (None, 3)}
    for key, shape in expected.items():
        got = np.shape(a[key])
        if v <= 0 or len(got) != len(shape) or any(e is not None and g != e for g, e in zip(got, shape)):
            want = "×".join("n" if e is None else str(e) for e in shape)
            raise ModelFileError(f"'{path}' has {key} of shape {got}; a FLAME model has {want}. The file "
                                 "is not a FLAME model or is corrupt: download it again.")
    weights = np.asarray(a["weights"], dtype=np.float64)
    faces = np.asarray(a["f"], dtype=np.int64)
    if not np.allclose(weights.sum(axis=1), 1.0, atol=WEIGHT_SUM_TOLERANCE) or (
            faces.size and (faces.min() < 0 or faces.max() >= v)):
        raise ModelFileError(f"'{path}' has skinning weights that do not sum to 1 or faces outside its "
                             f"{v} vertices; the file is corrupt. Download it again.")
    shapedirs = np.asarray(a["shapedirs"], dtype=np.float64)
    return FlameModel(v_template=v_template, shapedirs=shapedirs,
                      posedirs=np.asarray(a["posedirs"], dtype=np.float64),
                      J_regressor=np.asarray(a["J_regressor"], dtype=np.float64), weights=weights,
                      parents=_parents(np.asarray(a["kintree_table"]), path), faces=faces,
                      num_shape=min(NUM_SHAPE, shapedirs.shape[2]), path=path)


def _parents(kintree: np.ndarray, path: str) -> np.ndarray:
    """Parent index per joint from ``kintree_table`` (row 0 parent ids, row 1 joint ids), root → −1."""
    ids = [int(i) for i in kintree[1]]
    column = {joint_id: col for col, joint_id in enumerate(ids)}
    parents = np.array([-1 if int(p) in (ROOT_PARENT, -1) else column.get(int(p), -2) for p in kintree[0]])
    if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, NUM_JOINTS)):
        raise ModelFileError(f"'{path}' has a kintree_table {kintree.tolist()} that is not a tree rooted at "
                             "joint 0 with parents before children; the file is corrupt.")
    return parents.astype(np.int64)


def check_topology(model: FlameModel, num_vertices: int, what: str = "the head") -> None:
    """Refuse (``MeshError``) a model whose vertex count differs from the head's."""
    if model.num_vertices != num_vertices:
        raise MeshError(f"the FLAME model '{model.path}' has {model.num_vertices} vertices but {what} has "
                         f"{num_vertices}; a rig and blink shapes need FLAME's topology. Choose a FLAME head "
                         "(Add FLAME head) or the FLAME model that matches it.")


# ---------------------------------------------------------------------------- the formulas

def blend_shapes(model: FlameModel, betas=None, expression=None, v_template=None) -> np.ndarray:
    """Step 1, ``T_P = T̄ + B_S(β) + B_E(ψ)``: float64 [V, 3].

    ``betas`` [≤ S] and ``expression`` [≤ E] are coefficient vectors (shorter ones are zero-padded);
    ``v_template`` [V, 3] replaces T̄ (VOCA's ``edit_sequences.py`` puts a speech frame there).
    """
    base = model.v_template if v_template is None else np.asarray(v_template, dtype=np.float64)
    out = base.copy()
    for coeffs, basis in ((betas, model.shape_basis), (expression, model.expression_basis)):
        if coeffs is not None and np.size(coeffs):
            coeffs = np.asarray(coeffs, dtype=np.float64).ravel()
            if coeffs.size > basis.shape[2]:
                raise InputError(f"{coeffs.size} coefficients given but the FLAME model has {basis.shape[2]}.")
            out += basis[:, :, :coeffs.size] @ coeffs
    return out


def regress_joints(model: FlameModel, shaped: np.ndarray) -> np.ndarray:
    """Step 2, ``J = 𝒥 · T_P``: float64 [K, 3] joint positions for this head."""
    return model.J_regressor @ np.asarray(shaped, dtype=np.float64)


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices ``R(θ) = I + sin φ [k]× + (1 − cos φ) [k]×²`` (φ = |θ|, k = θ / φ).

    rotvec float [..., 3] radians → float64 [..., 3, 3]; θ = 0 gives I exactly.
    """
    theta = np.asarray(rotvec, dtype=np.float64)
    phi = np.linalg.norm(theta, axis=-1, keepdims=True)                        # [..., 1]
    k = np.divide(theta, phi, out=np.zeros_like(theta), where=phi > 0)        # unit axis
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    cross = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(k.shape[:-1] + (3, 3))
    s, c = np.sin(phi)[..., None], np.cos(phi)[..., None]
    return np.eye(3) + s * cross + (1.0 - c) * (cross @ cross)


def pose_feature(pose: np.ndarray) -> np.ndarray:
    """Step 3's ``vec(R(θ_k)) − vec(I)`` of the non-root joints: pose [..., K, 3] → float64 [..., 36]."""
    rot = rodrigues(np.asarray(pose)[..., 1:, :]) - np.eye(3)
    return rot.reshape(rot.shape[:-3] + (POSE_FEATURES,))


def world_transforms(pose: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Step 4's ``G'_k``: float64 [..., K, 4, 4], the rest pose removed (``G_k · [I | −J_k]``).

    pose [..., K, 3] rotation vectors; joints [K, 3] rest joint positions; parents [K] (root −1).
    """
    rot = rodrigues(pose)                                                      # [..., K, 3, 3]
    lead = rot.shape[:-3]
    local = np.zeros(lead + (NUM_JOINTS, 4, 4))
    local[..., :3, :3] = rot
    offsets = joints - np.where(parents[:, None] >= 0, joints[np.maximum(parents, 0)], 0.0)
    local[..., :3, 3] = offsets                                                # J_k − J_parent(k)
    local[..., 3, 3] = 1.0
    chain = [local[..., 0, :, :]]
    for k in range(1, NUM_JOINTS):
        chain.append(chain[parents[k]] @ local[..., k, :, :])                 # G_k = G_parent · A_k
    g = np.stack(chain, axis=-3)                                              # [..., K, 4, 4]
    g[..., :3, 3] -= np.einsum("...kij,kj->...ki", g[..., :3, :3], joints)    # G'_k = G_k · [I | −J_k]
    return g


def skin(model: FlameModel, pose: np.ndarray, shaped: np.ndarray = None, correctives: bool = True,
         joints: np.ndarray = None) -> np.ndarray:
    """FLAME's posed vertices for each pose: Eq. 1 applied to ``T_P`` (+ B_P when ``correctives``).

    Parameters
    ----------
    pose : float [F, K, 3] or [K, 3]
        Rotation vectors, radians, FLAME's joint order.
    shaped : float [V, 3] or [F, V, 3], optional
        ``T_P`` (default: the model's template); a sequence gives one shaped head per frame.
    correctives : bool
        Add the pose correctives B_P (FLAME does; off gives the rig without its corrective shape keys).
    joints : float [K, 3], optional
        Rest joints (default: regressed from ``shaped``, or from its first frame for a sequence).

    Returns
    -------
    float64 [F, V, 3] (or [V, 3] for a single pose).
    """
    pose = np.asarray(pose, dtype=np.float64)
    single = pose.ndim == 2
    pose = pose[None] if single else pose
    shaped = model.v_template if shaped is None else np.asarray(shaped, dtype=np.float64)
    rest = shaped if shaped.ndim == 2 else shaped[0]
    joints = regress_joints(model, rest) if joints is None else np.asarray(joints, dtype=np.float64)
    out = np.empty((pose.shape[0], model.num_vertices, 3))
    for lo in range(0, pose.shape[0], SKIN_CHUNK):
        part = pose[lo:lo + SKIN_CHUNK]
        posed = shaped[None] if shaped.ndim == 2 else shaped[lo:lo + SKIN_CHUNK]
        if correctives:
            posed = posed + np.einsum("vcp,fp->fvc", model.posedirs, pose_feature(part))
        g = world_transforms(part, joints, model.parents)                     # [f, K, 4, 4]
        blended = np.einsum("vk,fkij->fvij", model.weights, g[..., :3, :])    # Σ_k w_ik G'_k [f, V, 3, 4]
        out[lo:lo + part.shape[0]] = (np.einsum("fvij,fvj->fvi", blended[..., :3], posed)
                                      + blended[..., 3])
    return out[0] if single else out


def identity_sliders(model: FlameModel, count: int) -> np.ndarray:
    """The first ``count`` identity components as slider deltas: float32 [count, V, 3] (metres per unit).

    A face-shape slider at value β_n adds β_n · B_S[:, :, n]; FLAME's components are scaled so that
    β ~ N(0, 1) over its training heads, so ±3 spans almost every head.
    """
    if not 0 < count <= model.num_shape:
        raise InputError(f"face-shape sliders: choose 1..{model.num_shape} components, got {count}.")
    return np.ascontiguousarray(np.moveaxis(model.shape_basis[:, :, :count], 2, 0), dtype=np.float32)
