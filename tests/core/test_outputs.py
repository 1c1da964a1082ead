"""Output safety: destinations checked before work, exact names, all-or-nothing commits, .blend1 backups."""
import os

import pytest

from voca_addon.core import outputs
from voca_addon.core.errors import InputError


def test_outputs_check_refuses_suffix_folder_missing_and_existing(tmp_path):
    with pytest.raises(InputError, match=r"--out '.*a\.txt' must end in \.npz"):
        outputs.check_output(tmp_path / "a.txt", suffixes=(".npz",))
    with pytest.raises(InputError, match="does not exist"):
        outputs.check_output(tmp_path / "none" / "a.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        outputs.check_output(tmp_path / "d.npz")
    (tmp_path / "x.blend").write_bytes(b"old")
    with pytest.raises(InputError, match=r"already exists; add --overwrite .*kept as x\.blend1"):
        outputs.check_output(tmp_path / "x.blend")
    assert outputs.check_output(tmp_path / "x.blend", overwrite=True) == tmp_path / "x.blend"
    assert list(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []    # probe removed


def test_outputs_check_refuses_an_unwritable_folder(tmp_path):
    from tests.blender.test_headless import unwritable_folder
    folder = unwritable_folder(tmp_path)
    with pytest.raises(InputError, match=r"cannot write '.*v\.mp4': the folder .* is not writable"):
        outputs.check_output(folder / "v.mp4", "--render")


def test_outputs_distinct_outputs_and_inputs(tmp_path):
    a, b = tmp_path / "a.blend", tmp_path / "b.mp4"
    with pytest.raises(InputError, match="--out and --render name the same file"):
        outputs.check_distinct({"--out": a, "--render": a}, {})
    a.write_bytes(b"scene")
    with pytest.raises(InputError, match="also the --scene input; to write over it add --overwrite"):
        outputs.check_distinct({"--out": a}, {"--scene": str(a)}, replaceable=("--scene",))
    outputs.check_distinct({"--out": a}, {"--scene": str(a)}, replaceable=("--scene",), overwrite=True)
    with pytest.raises(InputError, match="also the AUDIO input"):
        outputs.check_distinct({"--render": b}, {"AUDIO": str(b)}, overwrite=True)
    os.symlink(a, tmp_path / "link.blend")                 # the same file by another name
    with pytest.raises(InputError, match="also the --scene input"):
        outputs.check_distinct({"--out": tmp_path / "link.blend"}, {"--scene": str(a)})


def test_outputs_staged_commits_all_and_keeps_blend1(tmp_path):
    blend, video = tmp_path / "s.blend", tmp_path / "v.mp4"
    blend.write_bytes(b"old scene")
    with outputs.Staged([blend, video]) as staged:
        staged.temp(blend).write_bytes(b"new scene")
        staged.temp(video).write_bytes(b"video")
        assert blend.read_bytes() == b"old scene" and not video.exists()    # nothing moves before commit
        staged.commit()
    assert blend.read_bytes() == b"new scene" and video.read_bytes() == b"video"
    assert (tmp_path / "s.blend1").read_bytes() == b"old scene"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.blend", "s.blend1", "v.mp4"]


def test_outputs_staged_interrupted_writes_nothing(tmp_path):
    blend, video = tmp_path / "s.blend", tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):
        with outputs.Staged([blend, video]) as staged:
            staged.temp(blend).write_bytes(b"new scene")
            raise KeyboardInterrupt                        # Ctrl-C before the video was written
    assert list(tmp_path.iterdir()) == []
    with outputs.Staged([blend, video]) as staged:
        staged.temp(blend).write_bytes(b"new scene")
        with pytest.raises(InputError, match=r"v\.mp4' was not written; nothing was changed"):
            staged.commit()
    assert list(tmp_path.iterdir()) == []


def test_outputs_messages_name_the_users_path(tmp_path):
    dest = tmp_path / "o.npz"

    def failing_writer(temp):
        raise InputError(f"cannot encode '{temp}'")
    with pytest.raises(InputError) as info:
        outputs.write_exact(dest, failing_writer)
    assert str(dest) in str(info.value) and ".part" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
