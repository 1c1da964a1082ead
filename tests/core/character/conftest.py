"""Fixtures for the character stage: FLAME, the official VOCA sequence, the ARKit reference face."""
import glob
import os

import numpy as np
import pytest
import scipy.sparse as sp

from voca_addon.core.character import fit as fitting
from voca_addon.core.flame import meshio


@pytest.fixture(scope="session")
def arkit(shared_data):
    """The ARKit reference face: mesh, its 51 keys (deltas), names, and the 68 landmark pairs."""
    folder = shared_data / "arkit"
    neutral = meshio.read_mesh(folder / "ARKit_blendshapes" / "Neutral.obj")
    files = sorted(f for f in glob.glob(str(folder / "ARKit_blendshapes" / "*.obj"))
                   if not f.endswith("Neutral.obj"))
    names = tuple(os.path.basename(f)[:-4] for f in files)
    keys = np.stack([meshio.read_mesh(f).vertices - neutral.vertices for f in files])
    flame_ids = np.loadtxt(folder / "FLAME_landmarks.txt", dtype=np.int64)
    target_ids = np.loadtxt(folder / "ARKit_landmarks.txt", dtype=np.int64)
    return dict(mesh=neutral, keys=keys, names=names, flame_ids=flame_ids, target_ids=target_ids)


@pytest.fixture(scope="session")
def arkit_fit(flame, arkit):
    return fitting.fit_target(flame.vertices, flame.faces, arkit["mesh"].vertices, arkit["mesh"].faces,
                              arkit["flame_ids"], arkit["target_ids"])


def subdivide(vertices, faces):
    """Every triangle split in four at its edge midpoints → (sparse W [V', V] with new = W @ old, faces')."""
    f = np.asarray(faces, np.int64)
    v = len(vertices)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(e, axis=0, return_inverse=True)
    m01, m12, m20 = (v + inverse.ravel()).reshape(3, -1)
    a, b, c = f.T
    new_faces = np.concatenate([np.c_[a, m01, m20], np.c_[m01, b, m12], np.c_[m20, m12, c], np.c_[m01, m12, m20]])
    rows = np.r_[np.arange(v), v + np.arange(len(unique)), v + np.arange(len(unique))]
    cols = np.r_[np.arange(v), unique[:, 0], unique[:, 1]]
    vals = np.r_[np.ones(v), np.full(2 * len(unique), 0.5)]
    return sp.csr_matrix((vals, (rows, cols)), shape=(v + len(unique), v)), new_faces
