"""Unexpected errors: traceback in a per-user log file, one line for the user, exit status 3."""
import os

import pytest

from voca_addon.cli import common, main as cli
from voca_addon.core import errorlog


def _broken_call():
    table = {"frames": 3}
    return table["vertices"]            # a real KeyError, as a bug in the add-on would raise


def test_errorlog_writes_traceback_in_log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path / "logs"))
    try:
        _broken_call()
    except KeyError as exc:
        path = errorlog.write_error_log(exc, "unit test")
    assert path.parent == tmp_path / "logs" and path.name.startswith("voca-error-")
    text = path.read_text("utf-8")
    assert "context: unit test" in text and "Traceback (most recent call last)" in text
    assert "_broken_call" in text and "KeyError: 'vertices'" in text


def test_errorlog_falls_back_to_temp_when_log_dir_unwritable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VOCA_LOG_DIR", str(blocker / "logs"))      # cannot be created under a file
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)                 # re-read TMPDIR
    path = errorlog.write_error_log(ValueError("x"))
    assert path is not None and path.is_file() and str(path).startswith(str(tmp_path / "tmp"))


def test_errorlog_keeps_only_newest_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path))
    for i in range(errorlog.KEEP_LOGS + 5):
        errorlog.write_error_log(RuntimeError(str(i)))
    assert len(list(tmp_path.glob("voca-error-*.log"))) == errorlog.KEEP_LOGS


def test_errorlog_run_guarded_internal_error_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path))
    status = common.run_guarded(_broken_call, "python -m voca_addon infer")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == common.EXIT_INTERNAL_ERROR == 3
    assert len(err) == 1 and err[0].startswith("error: internal error (KeyError") and "Traceback" not in err[0]
    (log,) = tmp_path.glob("voca-error-*.log")
    assert str(log) in err[0]
    assert "python -m voca_addon infer" in log.read_text("utf-8")


@pytest.mark.parametrize("exc, status", [(common.InputError("bad --fps"), 2), (KeyboardInterrupt(), 130)])
def test_errorlog_run_guarded_user_errors_write_no_log(tmp_path, monkeypatch, capsys, exc, status):
    monkeypatch.setenv("VOCA_LOG_DIR", str(tmp_path))

    def call():
        raise exc
    assert common.run_guarded(call) == status
    assert not list(tmp_path.iterdir())
    assert capsys.readouterr().err.startswith("error: ")
