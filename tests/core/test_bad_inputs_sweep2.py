"""The second sweep of bad inputs (issue 19; the table in docs/troubleshooting.md, "Bad inputs, second
sweep"): each case that was not clean — a raw ``[Errno 28]`` naming no file, a claim left on a full disk,
a folder called "not found", a too-long name failing on the file system, ``models status`` taking a file
for an empty folder — now one ``error:`` line, exit 2, nothing written.

Run as a user runs the commands (``python -m voca_addon``, bpy and tensorflow unimportable) where that is
cheap (``phonemes``, ``models``: no model is read); the full disk is a file-size limit
(``RLIMIT_FSIZE``, no root needed), which fails a write as a full disk does, naming no file.
"""
import errno
import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests.core.test_isolation import BLOCKER, ROOT
from voca_addon.cli import articulation, common
from voca_addon.core import claims, outputs
from voca_addon.core.errors import InputError

# the file-size limit in bytes, set in the child before the command runs (SIGXFSZ ignored: the write fails)
LIMIT = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
        "resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0}))\n"


RUN = "import runpy, sys; sys.argv = ['voca_addon'] + sys.argv[1:]; runpy.run_module('voca_addon', run_name='__main__')"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """HOME, the model cache and the error logs of the runs: apart from the folders the tests list."""
    return tmp_path_factory.mktemp("home")


def cli(*args, home, fsize=None):
    code = BLOCKER + (LIMIT.format(fsize) if fsize is not None else "") + RUN
    env = dict(os.environ, HOME=str(home), VOCA_LOG_DIR=str(home), VOCA_CACHE_DIR=str(home / "cache"))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def one_error(r, *fragments):
    """One ``error:`` line, exit 2, no traceback; every fragment in it; never a temporary's name."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert "[Errno" not in lines[0] and ".voca-" not in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def wav(shared_data):
    return shared_data / "audio" / "test_sentence.wav"


def alignment(path, n=2):
    """Our JSON alignment of ``n`` alternating AA / M phones within the first 4 s of the sentence."""
    path.write_text(json.dumps([dict(phone="M" if i % 2 else "AA", start=i * 4.0 / n, end=(i + 1) * 4.0 / n,
                                     word="w") for i in range(n)]))
    return path


# ---------------------------------------------------------------- a full disk
@pytest.mark.parametrize("fsize,small", [(0, True), (16384, False)], ids=["full-to-the-last-byte", "nearly-full"])
def test_sweep2_phonemes_on_a_full_disk_names_the_file_and_leaves_nothing(wav, tmp_path, fsize, small, home):
    """Before: ``error: [Errno 28] No space left on device`` and the run's claim left on the full disk
    (fsize 0: the claim's own write failed); after: the destination named, nothing left, the next run
    (with space) succeeds."""
    src = alignment(tmp_path / "a.json", 2 if small else 2000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "p.json"
    r = cli("phonemes", wav, "--alignment", src, "--out", out, fsize=fsize, home=home)
    one_error(r, f"'{out}'", "File too large")
    assert list(out_dir.iterdir()) == []                     # no claim, no temporary, no partial file
    r = cli("phonemes", wav, "--alignment", src, "--out", out, home=home)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in out_dir.iterdir()] == ["p.json"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_sweep2_a_write_that_fills_the_disk_names_the_runs_outputs(tmp_path, capsys, code):
    """Before: the exports (export-pc2, export-obj: a write inside Blender's exporter) and ``models
    install`` printed ``error: [Errno 28] No space left on device`` — a write's OSError names no file.
    The guard now names the run's destinations; other OSErrors (with their file) are printed as before."""
    dest = tmp_path / "head.pc2"

    def export():
        outputs.check_output(dest, "--out", (".pc2",))
        raise OSError(code, os.strerror(code))
    assert common.run_guarded(export) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"error: cannot write '{dest}': {os.strerror(code)}.") and "free some space" in line
    assert list(tmp_path.iterdir()) == []                     # the claim released

    def unreadable():
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "x"))
    assert common.run_guarded(unreadable) == 2
    assert str(tmp_path / "x") in capsys.readouterr().err


def test_sweep2_claim_on_a_full_disk_is_removed(tmp_path, monkeypatch):
    """The claim file is created (an empty inode fits) but its content cannot be written: before, the
    half-written claim stayed on the full disk and the message was ``[Errno 28]``."""
    real = os.fdopen

    class Full:
        def __init__(self, fd, *a):
            self.handle = real(fd, *a)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(claims.os, "fdopen", Full)
    dest = tmp_path / "anim.npz"
    with claims.claiming():
        with pytest.raises(InputError) as e:
            outputs.check_output(dest)
    assert str(e.value).startswith(f"cannot write '{dest}': No space left on device in '{tmp_path}'.")
    assert list(tmp_path.iterdir()) == []


def test_sweep2_models_install_on_a_full_disk(voca_ckpt, tmp_path, home):
    """Before: ``error: [Errno 28] No space left on device`` (the checkpoint copy into the staging folder)."""
    archive = tmp_path / "voca.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(voca_ckpt.parent.iterdir()):
            z.write(p, "trained_model/" + p.name)
    folder = tmp_path / "models"
    folder.mkdir()
    r = cli("models", "install", archive, "--folder", folder, fsize=65536, home=home)
    one_error(r, f"'{folder}'", "Nothing was installed", "free some space")
    assert list(folder.iterdir()) == []                       # the staging folder removed
    r = cli("models", "install", archive, "--folder", folder, home=home)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in voca_ckpt.parent.iterdir())


# ---------------------------------------------------------------- names
def test_sweep2_name_of_255_bytes_works_and_256_is_refused_before_anything(wav, tmp_path, home):
    """Before: a 256-byte ``--out`` name failed with ``[Errno 36] File name too long: '…'`` after the
    audio was read; now it is refused up front saying the limit. 255 bytes (82 CJK characters +
    ``abcd.json``) is legal and written under that exact name (the temporary name is short)."""
    src = alignment(tmp_path / "a.json")
    ok = tmp_path / ("語" * 82 + "abcd.json")
    assert len(ok.name.encode()) == 255
    r = cli("phonemes", wav, "--alignment", src, "--out", ok, home=home)
    assert r.returncode == 0, r.stderr
    assert ok.is_file() and json.loads(ok.read_text())[1]["phone"] == "M"
    long = tmp_path / ("語" * 82 + "abcde.json")
    before = sorted(tmp_path.iterdir())
    one_error(cli("phonemes", wav, "--alignment", src, "--out", long, home=home), "256 bytes", "at most 255")
    assert sorted(tmp_path.iterdir()) == before


def test_sweep2_blend_name_counts_the_byte_of_its_backup_when_replacing(tmp_path):
    """A new 255-byte ``X.blend`` is legal; replacing one (--overwrite) is refused up front, since its backup
    ``X.blend1`` would be 256 bytes (found on bpy 5.3: the refusal must not hit a first write)."""
    dest = tmp_path / ("é" * 124 + "a.blend")
    assert len(dest.name.encode()) == 255
    assert outputs.check_output(dest, "--out", (".blend",)) == dest
    dest.write_bytes(b"a scene")
    with pytest.raises(InputError, match="256 bytes long in UTF-8 \\(with the 1 of its backup"):
        outputs.check_output(dest, "--out", (".blend",), overwrite=True)
    assert dest.read_bytes() == b"a scene"


# ---------------------------------------------------------------- a folder or a link where a file is expected
@pytest.mark.parametrize("flag,kind", [("--alignment", "folder"), ("--alignment", "loop"),
                                       ("--transcript-file", "folder"), ("--transcript-file", "loop")])
def test_sweep2_phonemes_folder_or_link_loop_is_said_as_such(wav, tmp_path, flag, kind, home):
    """Before: a folder (or a loop of links) given as the file was "not found. Check the path."."""
    path = tmp_path / ("a.json" if flag == "--alignment" else "t.txt")
    if kind == "folder":
        path.mkdir()
    else:
        os.symlink(tmp_path / "b", path)
        os.symlink(path, tmp_path / "b")
    before = sorted(tmp_path.iterdir())
    expected = "is a folder, not a file" if kind == "folder" else "a loop of links"
    one_error(cli("phonemes", wav, flag, path, "--out", tmp_path / "o.json", home=home), str(path), expected)
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("flag", ["--transcript", "--alignment"])
def test_sweep2_articulation_flags_folder_is_said_as_such(wav, tmp_path, flag):
    """``infer`` / ``animate`` / ``import-sequence`` / ``retarget``'s articulation flags (their shared
    check): a folder named ``words.txt`` / ``a.json`` was "not found"."""
    folder = tmp_path / ("words.txt" if flag == "--transcript" else "a.json")
    folder.mkdir()
    kw = {"transcript": str(folder)} if flag == "--transcript" else {"alignment": str(folder)}
    with pytest.raises(InputError, match="is a folder, not a file"):
        articulation.plan(str(wav), **kw)


# ---------------------------------------------------------------- models status / install
@pytest.mark.parametrize("kind", ["file", "loop"])
def test_sweep2_models_status_folder_that_is_not_a_folder(tmp_path, kind, home):
    """Before: ``models status --folder FILE`` listed all five files as missing (exit 1) as for an empty
    folder; now the folder flag itself is refused."""
    folder = tmp_path / "f"
    if kind == "file":
        folder.write_text("x")
    else:
        os.symlink(tmp_path / "g", folder)
        os.symlink(folder, tmp_path / "g")
    one_error(cli("models", "status", "--folder", folder, home=home), f"'{folder}'", "not a folder")


def test_sweep2_models_install_zip_that_is_a_folder(tmp_path, home):
    """Before: "not a readable zip archive ([Errno 21] Is a directory …); download … again"."""
    (tmp_path / "v.zip").mkdir()
    one_error(cli("models", "install", tmp_path / "v.zip", "--folder", tmp_path / "m", home=home), "is a folder",
              "zip file itself")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.zip"]


# ---------------------------------------------------------------- batch
def test_sweep2_batch_names_in_any_script_link_loops_and_names_too_long(voca_ckpt, ds_small_pb, shared_data,
                                                                         tmp_path, home):
    """One batch, four rows. Before: a CSV ``alignment`` that is a loop of links stopped the whole batch with
    exit 3 (``internal error (RuntimeError: Symlink loop …)``); a name in Chinese became ``clip`` (two such
    rows: refused as duplicates); a name whose ``NAME.phonemes.TextGrid`` is over 255 bytes was computed,
    then failed on ``[Errno 36] File name too long`` after its ``.npz`` was written. After: the loop and the
    long name are those clips' problems (nothing written for them), the others are written under their
    own names."""
    wav = shared_data / "audio" / "test.wav"
    os.symlink(tmp_path / "b.json", tmp_path / "a.json")
    os.symlink(tmp_path / "a.json", tmp_path / "b.json")
    long = "中文" * 40                                    # 240 bytes: .npz fits, .phonemes.TextGrid (258) not
    good = alignment(tmp_path / "good.json")
    (tmp_path / "in.csv").write_text("audio,name,alignment\n" + "".join(
        f"{wav},{name},{al}\n" for name, al in (("台词", good.name), ("台詞", good.name), ("loop", "a.json"),
                                                (long, good.name))), encoding="utf-8")
    out = tmp_path / "out"
    r = cli("batch", tmp_path / "in.csv", "--out", out, "--deepspeech", ds_small_pb, "--voca", voca_ckpt,
            "--template", shared_data / "flame" / "FLAME_sample.ply", "--phonemes", "textgrid", home=home)
    assert r.returncode == 4, r.stderr                   # some clips failed (documented status)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    summary = {c["name"]: c for c in json.loads((out / "batch_summary.json").read_text())["results"]}
    assert {n: c["outcome"] for n, c in summary.items()} == {"台词": "ok", "台詞": "ok", "loop": "failed",
                                                            long: "failed"}
    assert "a loop of links" in summary["loop"]["error"] and str(tmp_path / "a.json") in summary["loop"]["error"]
    assert "258 bytes" in summary[long]["error"] and "shorter name" in summary[long]["error"]
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("batch_"))
    assert written == sorted(f"{n}.{e}" for n in ("台词", "台詞") for e in ("npz", "phonemes.TextGrid"))


# ---------------------------------------------------------------- retarget's landmark pairs
def test_sweep2_landmark_pairs_saved_as_utf16_are_read(tmp_path):
    """Before: a pairs file saved as "Unicode" (UTF-16 with a byte-order mark) by a Windows editor was refused
    with a garbled line ('��3 5 7 2 …' is not a pair); now it reads as the same pairs as its UTF-8 copy."""
    from voca_addon.core.character.landmarks import read_pairs
    text = "# flame target\n3572 10\n3555 11\n2800 12\n1700 13\n"
    utf8, utf16 = tmp_path / "p8.txt", tmp_path / "p16.txt"
    utf8.write_text(text, encoding="utf-8")
    utf16.write_bytes(text.encode("utf-16"))            # with its BOM, as Notepad writes it
    for a, b in zip(read_pairs(utf8), read_pairs(utf16)):
        assert a.tolist() == b.tolist()
    assert read_pairs(utf16)[0].tolist() == [3572, 3555, 2800, 1700]


@pytest.mark.parametrize("suffix", [".json", ".TextGrid"])
def test_sweep2_alignment_past_the_audio_names_the_file_once(tmp_path, suffix):
    """Before: "'a.json': 'a.json', entry 1 ends at 5.6 s, past the audio's end" (the file named twice)."""
    from voca_addon.core.phonemes import Phone, PhoneTrack, read_alignment, write_alignment
    path = write_alignment(PhoneTrack((Phone("M", 5.0, 5.6, "me"),), "json"), tmp_path / ("a" + suffix),
                           duration=6.0)
    with pytest.raises(InputError) as e:
        read_alignment(str(path), 5.095)
    assert str(e.value).count(path.name) == 1 and "ends at 5.6 s, past the audio's end (5.095 s)" in str(e.value)


def test_sweep2_ctrl_c_while_the_command_line_loads(tmp_path, home):
    """Ctrl-C in the first second, while ``python -m voca_addon`` still imports its modules (here: the
    import of ``csv`` by the batch command, where a sweep's SIGINT 0.6 s into ``models install`` landed).
    Before: a ``KeyboardInterrupt`` traceback and exit -2; after: ``error: interrupted``, exit 130."""
    hook = ("import builtins\n_imp = builtins.__import__\n"
            "def _ctrl_c(name, *a, **k):\n"
            "    if name == 'csv':\n        raise KeyboardInterrupt\n"
            "    return _imp(name, *a, **k)\n"
            "builtins.__import__ = _ctrl_c\n")
    r = subprocess.run([sys.executable, "-c", BLOCKER + hook + RUN, "models", "status", "--folder", tmp_path],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(home), VOCA_LOG_DIR=str(home)))
    assert (r.returncode, r.stderr) == (130, "error: interrupted\n")
