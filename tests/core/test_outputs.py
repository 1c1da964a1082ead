"""Output safety: destinations checked before work, exact names, all-or-nothing commits, .blend1 backups."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voca_addon.core import outputs
from voca_addon.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("name", ["n" * 244 + ".npz", "日本語の台詞" * 13 + ".blend", "台词.npz"])
def test_outputs_long_and_non_latin_names_write_through_short_temporary_names(tmp_path, name):
    dest = tmp_path / name
    assert len(dest.name.encode("utf-8")) <= 255                    # a legal name, up to the limit
    temp = outputs.temp_name(dest)
    assert temp.parent == tmp_path and temp.name.startswith(".voca-") and len(temp.name.encode()) < 60
    outputs.write_exact(dest, lambda t: t.write_bytes(b"data"))
    assert [p.name for p in tmp_path.iterdir()] == [name] and dest.read_bytes() == b"data"


def _dead_pid() -> int:
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid                                               # gone, and reaped


def test_outputs_leftovers_of_killed_runs_are_removed_by_the_next_write(tmp_path):
    dest = tmp_path / "scene.blend"
    mine = outputs.temp_name(dest)
    killed = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{_dead_pid()}."))
    killed.write_bytes(b"74 MB of a killed save")
    running = mine.with_name(mine.name.replace(".part", "x.part"))   # this process: a concurrent writer
    running.write_bytes(b"still being written")
    host = mine.name.split(".")[2]
    foreign_old = killed.with_name(killed.name.replace(f".{host}.", ".abcdef."))
    foreign_new = running.with_name(running.name.replace(f".{host}.", ".fedcba."))
    for path in (foreign_old, foreign_new):
        path.write_bytes(b"from a Dask worker on another machine")
    day_ago = os.path.getmtime(foreign_old) - outputs.FOREIGN_LEFTOVER_S - 60
    os.utime(foreign_old, (day_ago, day_ago))
    other = outputs.temp_name(tmp_path / "other.blend")
    other.write_bytes(b"another destination's")
    outputs.write_exact(dest, lambda t: t.write_bytes(b"scene"))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([dest.name, running.name, foreign_new.name, other.name])


def test_outputs_npz_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path):
    import subprocess
    import sys
    dest = tmp_path / "anim.npz"
    dest.write_bytes(b"the previous complete file")
    script = (                                 # a file-size limit: the write fails like a full disk
        "import resource, signal, numpy as np\n"
        "from voca_addon.core.animation.npzstream import NpzWriter\n"
        "from voca_addon.cli.common import run_guarded\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "def write():\n"
        f"    with NpzWriter({str(dest)!r}) as z:\n"
        "        z.add('fps', 60.0)\n"
        "        z.add_rows('vertices', (40, 5023, 3), np.float32, (np.ones((10, 5023, 3)) for _ in range(4)))\n"
        "raise SystemExit(run_guarded(write))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: cannot write '{dest}': File too large.") and "Exception" not in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["anim.npz"] and dest.read_bytes() == b"the previous complete file"


def test_a_users_file_named_like_ours_is_not_taken_for_a_temporary(tmp_path):
    """Only temp_name's own shape is written in place (a Staged write into another's temporary); a user's
    '.voca-….part' file is a destination like any other: written beside and renamed."""
    from voca_addon.core import outputs
    dest = tmp_path / ".voca-notes.part.txt"
    assert not outputs.is_temp(dest)
    assert outputs.is_temp(outputs.temp_name(dest)) and outputs.is_temp(outputs.temp_name(tmp_path / "a b.npz"))
    dest.write_text("old")
    seen = []
    outputs.write_exact(dest, lambda temp: (seen.append(temp), Path(temp).write_text("new")))
    assert dest.read_text() == "new" and seen[0] != dest and outputs.is_temp(seen[0])


def test_a_killed_renders_frames_folder_is_swept_by_the_next_run(tmp_path):
    """framewise renders into TEMP.frames beside the movie; a kill -9 leaves it; the next run removes it."""
    import subprocess
    import sys
    from voca_addon.core import outputs
    dest = tmp_path / "shot.mp4"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    temp = outputs.temp_name(dest)
    frames = temp.with_name(temp.name.replace(f".{os.getpid()}.", f".{gone.pid}.") + ".frames")
    frames.mkdir()
    (frames / "frame_0001.png").write_bytes(b"png")
    mine = Path(str(outputs.temp_name(dest)) + ".frames")           # a live run's frames: kept
    mine.mkdir()
    assert outputs.sweep_leftovers(dest) == 1
    assert not frames.exists() and mine.is_dir()


_PROMOTE = "import sys; from pathlib import Path; from voca_addon.core import outputs; " \
           "outputs.promote(Path(sys.argv[1]), Path(sys.argv[2]))"


def test_promote_puts_a_kept_file_at_its_name_in_one_step(tmp_path):
    """A resumable download's .part, grown under its own name, replaces the destination whole."""
    dest, part = tmp_path / "output_graph.pb", tmp_path / ".output_graph.pb.part"
    dest.write_bytes(b"old graph")
    part.write_bytes(b"new graph, verified")
    assert outputs.promote(part, dest) == dest
    assert dest.read_bytes() == b"new graph, verified" and not part.exists()


def test_promote_failing_names_the_destination(tmp_path):
    dest = tmp_path / "output_graph.pb"
    dest.mkdir()                                    # a folder where the file goes: the rename fails
    (dest / "inside").write_bytes(b"x")
    part = tmp_path / ".output_graph.pb.part"
    part.write_bytes(b"new")
    with pytest.raises(InputError) as err:
        outputs.promote(part, dest)
    assert str(dest) in str(err.value) and ".part" not in str(err.value)
    assert part.read_bytes() == b"new"              # kept: the next run resumes or renames it


@pytest.mark.parametrize("fault", ["rename:1", "renamed:1"])
def test_fault_injection_killed_promoting_leaves_the_old_file_or_the_new_one(tmp_path, fault):
    dest, part = tmp_path / "output_graph.pb", tmp_path / ".output_graph.pb.part"
    dest.write_bytes(b"old graph")
    part.write_bytes(b"new graph")
    r = subprocess.run([sys.executable, "-c", _PROMOTE, str(part), str(dest)], cwd=ROOT, capture_output=True,
                       env=dict(os.environ, VOCA_FAULT=f"{fault}:KILL", PYTHONPATH=str(ROOT)), timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    if fault == "rename:1":                         # killed before the rename: both as they were
        assert dest.read_bytes() == b"old graph" and part.read_bytes() == b"new graph"
    else:
        assert dest.read_bytes() == b"new graph" and not part.exists()


def test_write_exact_a_failing_rename_is_a_user_error_naming_the_destination(tmp_path):
    """The rename itself fails (here a folder holding files sits at the destination's name): one InputError
    naming the destination — never a raw OSError (exit 3) or the temporary's name — and no temporary left."""
    dest = tmp_path / "anim.npz"
    dest.mkdir()
    (dest / "keep").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        outputs.write_exact(dest, lambda temp: temp.write_bytes(b"new"))
    assert str(dest) in str(err.value) and ".voca-" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.npz"] and (dest / "keep").read_bytes() == b"x"
