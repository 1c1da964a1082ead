"""The rig's keys from a folder of OBJs: the ARKit reference face's 51 keys; other topologies refused."""
import shutil

import numpy as np
import pytest

from voca_addon.core.character import keyfiles
from voca_addon.core.errors import InputError, MeshError
from voca_addon.core.flame import meshio


def test_keyfiles_reads_the_arkit_folder(shared_data, arkit):
    folder = shared_data / "arkit" / "ARKit_blendshapes"
    keys = keyfiles.read_key_folder(folder, arkit["mesh"])
    assert keys.names == arkit["names"] and len(keys.names) == 51
    np.testing.assert_array_equal(keys.deltas, arkit["keys"])
    np.testing.assert_array_equal(keys.rest, arkit["mesh"].vertices)


def test_keyfiles_refuses_another_topology(tmp_path, shared_data, arkit, flame):
    shutil.copy(shared_data / "arkit" / "ARKit_blendshapes" / "jawOpen.obj", tmp_path / "jawOpen.obj")
    meshio.write_obj(tmp_path / "mouthClose.obj", flame.vertices, flame.faces)
    with pytest.raises(MeshError, match="mouthClose.obj' has 5023 vertices.*the target has 1220"):
        keyfiles.read_key_folder(tmp_path, arkit["mesh"])


def test_keyfiles_refuses_missing_or_empty_folder(tmp_path, arkit):
    with pytest.raises(InputError, match="not a folder"):
        keyfiles.read_key_folder(tmp_path / "nope", arkit["mesh"])
    with pytest.raises(InputError, match="no .obj files"):
        keyfiles.read_key_folder(tmp_path, arkit["mesh"])
