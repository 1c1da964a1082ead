"""outputs.StagedFolder: a folder of files written under a temporary name, put in place all at once (a new or
empty destination) or file by file (one holding files), never a temporary left or named in a message."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voca_addon.core import outputs
from voca_addon.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> dict:
    """Every entry under ``folder`` (relative name → bytes, or None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _write_three(staged: outputs.StagedFolder) -> None:
    temp = staged.temp()
    for i in range(3):
        (temp / f"f_{i}.obj").write_bytes(b"new %d " % i * 500)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_staged_folder_commit_into_an_absent_folder_renames_it_there(tmp_path):
    dest = tmp_path / "seq.frames"
    with outputs.StagedFolder(dest) as staged:
        _write_three(staged)
        assert staged.temp().parent == tmp_path and outputs.is_temp(staged.temp())   # beside it, hidden
        assert not dest.exists()                                   # nothing at the destination before commit
        staged.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["seq.frames"]
    assert _tree(dest) == {f"f_{i}.obj": b"new %d " % i * 500 for i in range(3)}


def test_staged_folder_commit_into_an_empty_folder_fills_it(tmp_path):
    dest = tmp_path / "seq"
    dest.mkdir()
    with outputs.StagedFolder(dest) as staged:
        _write_three(staged)
        assert staged.temp().parent == tmp_path                    # empty: staged beside, one rename
        staged.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]
    assert sorted(_tree(dest)) == ["f_0.obj", "f_1.obj", "f_2.obj"]


def test_staged_folder_commit_into_a_folder_holding_files_follows_the_callers_rules(tmp_path):
    dest = tmp_path / "seq"
    dest.mkdir()
    old = {"f_0.obj": b"old 0", "f_1.obj": b"old 1", "f_7.obj": b"old stale frame", "notes.txt": b"the user's"}
    for name, data in old.items():
        (dest / name).write_bytes(data)
    with outputs.StagedFolder(dest) as staged:
        _write_three(staged)
        assert staged.temp().parent == dest                        # staged inside: same file system
        staged.commit(replace=lambda name: name != "f_1.obj", remove=lambda name: name.endswith(".obj"))
    assert _tree(dest) == {"f_0.obj": b"new 0 " * 500, "f_1.obj": b"old 1", "f_2.obj": b"new 2 " * 500,
                           "notes.txt": b"the user's"}          # f_1 kept by the rule, f_7 removed, notes kept
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
@pytest.mark.parametrize("existing", [False, True])
def test_staged_folder_an_exception_leaves_the_destination_and_no_temporary(tmp_path, error, existing):
    dest = tmp_path / "seq"
    if existing:
        dest.mkdir()
        (dest / "f_0.obj").write_bytes(b"old 0")
    before = _tree(tmp_path)
    with pytest.raises(error):
        with outputs.StagedFolder(dest) as staged:
            _write_three(staged)
            raise error("Ctrl-C or a failed frame, before the commit")
    assert _tree(tmp_path) == before


def test_staged_folder_a_destination_filled_meanwhile_keeps_the_other_writers_files(tmp_path):
    """Two writers of one folder (model-cache entries named by content): the one that renames second finds
    the folder filled, moves in only what the rule allows and leaves the first one's files as they are."""
    dest = tmp_path / "entry"
    with outputs.StagedFolder(dest) as late:
        _write_three(late)
        with outputs.StagedFolder(dest) as first:
            (first.temp() / "f_0.obj").write_bytes(b"first writer")
            first.commit()
        inode = (dest / "f_0.obj").stat().st_ino
        late.commit(replace=lambda name: False)
    assert (dest / "f_0.obj").read_bytes() == b"first writer" and (dest / "f_0.obj").stat().st_ino == inode
    assert sorted(_tree(dest)) == ["f_0.obj", "f_1.obj", "f_2.obj"]    # what it lacked moved in
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_staged_folder_leftovers_of_a_killed_run_are_swept_by_the_next(tmp_path):
    dest = tmp_path / "seq"
    dest.mkdir()
    (dest / "f_0.obj").write_bytes(b"old 0")
    mine = outputs.temp_name(dest)
    dead = mine.name.replace(f".{os.getpid()}.", f".{_dead_pid()}.")
    killed_beside, killed_inside = tmp_path / dead, dest / dead.replace(".part", "0.part")
    live = dest / mine.name.replace(".part", "1.part")           # this process: a run still writing
    for folder in (killed_beside, killed_inside, live):
        folder.mkdir()
        (folder / "f_0.obj").write_bytes(b"half a frame")
    with outputs.StagedFolder(dest) as staged:
        _write_three(staged)
        staged.commit()
    assert not killed_beside.exists() and not killed_inside.exists() and live.is_dir()
    assert sorted(p.name for p in dest.iterdir()) == sorted(["f_0.obj", "f_1.obj", "f_2.obj", live.name])
    assert (dest / "f_0.obj").read_bytes() == b"new 0 " * 500


def _read_only_folder(tmp_path: Path) -> Path:
    """A real folder holding a file that this process cannot create anything in: chmod 555, or for root
    (whom chmod does not stop) /proc/self; skipped when root finds even that writable."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        (folder / "f_0.obj").write_bytes(b"old 0")
        folder.chmod(0o555)
        return folder
    folder = Path("/proc/self")
    try:
        os.mkdir(folder / ".voca-probe")
    except OSError:
        return folder
    os.rmdir(folder / ".voca-probe")
    pytest.skip("running as root, and /proc/self is writable here: no read-only folder to test with")


@pytest.mark.parametrize("inside", [False, True])
def test_staged_folder_a_read_only_folder_is_refused_naming_the_destination(tmp_path, inside):
    folder = _read_only_folder(tmp_path)
    dest = folder if inside else folder / "seq"              # a folder holding files / a new one in it
    try:
        with pytest.raises(InputError) as info:
            with outputs.StagedFolder(dest) as staged:
                _write_three(staged)
                staged.commit()
        message = str(info.value)
        assert message.startswith(f"cannot write '{dest}': ") and outputs.TEMP_PREFIX not in message
        assert not dest.exists() or not any(outputs.is_temp(p) for p in dest.iterdir())
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)


FULL_DISK = (                                  # a file-size limit: writing fails like a full disk
    "import resource, signal, sys\n"
    "from pathlib import Path\n"
    "from voca_addon.core import outputs\n"
    "from voca_addon.cli.common import run_guarded\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))\n"
    "def write():\n"
    "    with outputs.StagedFolder(Path(sys.argv[1])) as staged:\n"
    "        (staged.temp() / 'f_0.obj').write_bytes(bytes(1 << 17))\n"
    "        staged.commit()\n"
    "raise SystemExit(run_guarded(write))\n")


@pytest.mark.parametrize("existing", [False, True])
def test_staged_folder_on_a_full_disk_names_the_destination_and_leaves_nothing(tmp_path, existing):
    dest = tmp_path / "seq"
    if existing:
        dest.mkdir()
        (dest / "f_0.obj").write_bytes(b"old 0")
    before = _tree(tmp_path)
    r = subprocess.run([sys.executable, "-c", FULL_DISK, str(dest)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: cannot write '{dest}': File too large.") and ".voca-" not in r.stderr
    assert _tree(tmp_path) == before


KILLED_COMMIT = ("import sys; from pathlib import Path; from voca_addon.core import outputs\n"
                 "with outputs.StagedFolder(Path(sys.argv[1])) as staged:\n"
                 "    temp = staged.temp()\n"
                 "    for i in range(3): (temp / f'f_{i}.obj').write_bytes(b'new %d ' % i * 500)\n"
                 "    staged.commit(remove=lambda name: name.endswith('.obj'))\n")


def _commit(dest: Path, fault: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOCA_FAULT")}
    env.update(PYTHONPATH=str(ROOT), **({"VOCA_FAULT": fault} if fault else {}))
    return subprocess.run([sys.executable, "-c", KILLED_COMMIT, str(dest)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


NEW = {f"f_{i}.obj": b"new %d " % i * 500 for i in range(3)}


@pytest.mark.parametrize("fault", ["write:1", "commit:1", "rename:1", "renamed:1"])
def test_fault_injection_killed_renaming_a_new_folder_leaves_none_or_all_of_it(tmp_path, fault):
    dest = tmp_path / "seq"
    r = _commit(dest, f"{fault}:KILL")
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not dest.exists() or _tree(dest) == NEW                 # never a folder with some frames
    assert _commit(dest).returncode == 0
    assert _tree(tmp_path) == {"seq": None, **{f"seq/{n}": d for n, d in NEW.items()}}   # leftover swept


@pytest.mark.parametrize("fault", ["commit:1", "rename:1", "rename:2", "renamed:2", "renamed:3"])
def test_fault_injection_killed_filling_a_folder_leaves_each_file_old_or_new(tmp_path, fault):
    """Into a folder holding files the commit moves them one by one: a kill between two leaves some files
    old and some new, never a partial file, the user's other files untouched; the next run completes it."""
    dest = tmp_path / "seq"
    dest.mkdir()
    old = {"f_0.obj": b"old 0", "f_1.obj": b"old 1", "f_2.obj": b"old 2", "f_7.obj": b"old 7",
           "notes.txt": b"the user's"}
    for name, data in old.items():
        (dest / name).write_bytes(data)
    r = _commit(dest, f"{fault}:KILL")
    assert r.returncode == -signal.SIGKILL, r.stderr
    files = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    assert files["notes.txt"] == b"the user's" and files["f_7.obj"] == b"old 7"   # removed only at the end
    for name in NEW:
        assert files[name] in (old[name], NEW[name]), name
    assert _commit(dest).returncode == 0
    assert _tree(tmp_path) == {"seq": None, "seq/notes.txt": b"the user's",
                               **{f"seq/{n}": d for n, d in NEW.items()}}


def test_staged_folder_an_unreadable_destination_is_a_user_error_naming_it(tmp_path, monkeypatch):
    """Listing the destination fails (no read permission; root reads anything, so the failure is injected at
    Path.iterdir): one InputError naming the destination, not an AttributeError from the half-made object."""
    dest = tmp_path / "seq"
    dest.mkdir()
    (dest / "f_0.obj").write_bytes(b"old")
    real = Path.iterdir

    def denied(self):
        if self == dest:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(InputError, match=rf"cannot write '{dest}': Permission denied"):
        outputs.StagedFolder(dest)
    monkeypatch.undo()
    assert _tree(tmp_path) == {"seq": None, "seq/f_0.obj": b"old"}


def test_staged_folder_a_merge_failing_half_way_says_the_folder_may_be_mixed(tmp_path):
    """Files moved in one by one: when one cannot be (a folder holding files sits at its name), the message
    says some files may be new and the others old, each whole — not 'nothing was changed'."""
    dest = tmp_path / "seq"
    dest.mkdir()
    (dest / "f_0.obj").write_bytes(b"old 0")
    (dest / "f_1.obj").mkdir()
    (dest / "f_1.obj" / "inside").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        with outputs.StagedFolder(dest) as staged:
            _write_three(staged)
            staged.commit()
    assert f"cannot write '{dest}'" in str(err.value) and "may be new" in str(err.value)
    assert "Nothing was changed" not in str(err.value) and ".voca-" not in str(err.value)
    assert (dest / "f_0.obj").read_bytes() == NEW["f_0.obj"]                      # moved before the failure
    assert not [p for p in dest.iterdir() if outputs.is_temp(p)]                   # the staging folder removed


def test_staged_folder_an_inputs_read_error_is_not_called_a_write_error(tmp_path):
    """An input that cannot be read while the folder is written (here a missing file) passes as it is, naming
    the input — not 'cannot write DEST'; the destination is untouched and no temporary is left."""
    dest, source = tmp_path / "seq", tmp_path / "gone.npz"
    with pytest.raises(FileNotFoundError) as err:
        with outputs.StagedFolder(dest) as staged:
            _write_three(staged)
            source.read_bytes()
    assert str(source) in str(err.value)
    assert _tree(tmp_path) == {}
