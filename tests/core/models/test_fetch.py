"""models fetch / install / status against a local HTTP server on 127.0.0.1 (no test reaches the internet).

The server (written here, with HTTP Range support) serves the real FLAME_sample.ply and texture_mesh
files from ../shared/data — so the pinned SHA-256 checksums are checked against the real files — and a
.tar.gz laid out like DeepSpeech's v0.1.0 release (models/output_graph.pb, alphabet.txt, lm.binary, trie)
whose graph is random bytes (the real graph is not available here; its spec carries their MD5).
"""
import dataclasses
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from voca_addon.cli import main as cli
from voca_addon.core.errors import ModelFileError
from voca_addon.core.models import fetch, status

GRAPH_BYTES = 3 << 20          # the fake graph: several download blocks


class Server:
    """Files by URL path; optional faults: cut the next response after N bytes, ignore Range."""

    def __init__(self, files):
        self.files, self.requests, self.cut_after, self.ignore_range = dict(files), [], None, False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = outer.files.get(self.path)
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(rng[len("bytes="):].split("-")[0]) if rng and not outer.ignore_range else 0
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if outer.cut_after is not None:                     # a broken connection, once
                    payload, outer.cut_after = payload[:outer.cut_after], None
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)
                outer.sent = len(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def release_archive(graph: bytes) -> bytes:
    """A deepspeech-0.1.0-models.tar.gz look-alike: models/ with the graph and the other release files."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("models/output_graph.pb", graph), ("models/alphabet.txt", b"# alphabet\n a\n"),
                           ("models/lm.binary", bytes(200_000)), ("models/trie", b"trie")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def graph():
    return np.random.default_rng(7).integers(0, 256, GRAPH_BYTES, dtype=np.uint8).tobytes()


@pytest.fixture
def server(shared_data, graph):
    files = {"/release/deepspeech-0.1.0-models.tar.gz": release_archive(graph)}
    for name in ("FLAME_sample.ply", "texture_mesh.obj", "texture_mesh.png"):
        files[f"/voca/template/{name}"] = (shared_data / "flame" / name).read_bytes()
    s = Server(files)
    yield s
    s.close()


def local_specs(server, graph):
    """The production specs with the server's URLs (the real checksums kept, the fake graph's MD5)."""
    ds, *templates = fetch.PUBLIC_FILES
    specs = [dataclasses.replace(ds, url=f"{server.url}/release/deepspeech-0.1.0-models.tar.gz",
                                 md5=hashlib.md5(graph).hexdigest())]
    return specs + [dataclasses.replace(t, url=f"{server.url}/voca/template/{t.name}") for t in templates]


def test_fetch_downloads_and_verifies_everything(server, graph, shared_data, tmp_path):
    stages = []
    lines = fetch.fetch(tmp_path / "models", local_specs(server, graph), lambda f, s: stages.append((f, s)))
    folder = tmp_path / "models"
    assert (folder / "output_graph.pb").read_bytes() == graph
    for name in ("FLAME_sample.ply", "texture_mesh.obj", "texture_mesh.png"):
        assert (folder / name).read_bytes() == (shared_data / "flame" / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["FLAME_sample.ply", "output_graph.pb", "texture_mesh.obj",
                                                        "texture_mesh.png"]          # no archive, no part files
    assert all(line.endswith("downloaded and verified") for line in lines)
    assert ("downloading output_graph.pb" in {s for _, s in stages}) and max(f for f, _ in stages) == 1.0
    # A second run verifies and downloads nothing.
    before = len(server.requests)
    assert all(line.endswith("already present and verified")
               for line in fetch.fetch(folder, local_specs(server, graph)))
    assert len(server.requests) == before


def test_fetch_resumes_an_interrupted_download_with_range(server, graph, tmp_path):
    specs = local_specs(server, graph)[:1]
    archive = server.files["/release/deepspeech-0.1.0-models.tar.gz"]
    server.cut_after = 1 << 20
    with pytest.raises(ModelFileError, match=r"interrupted .*run 'python -m voca_addon models fetch' again: it "
                                             r"resumes from the 1\.0 MB"):
        fetch.fetch(tmp_path, specs)
    part = tmp_path / ".deepspeech-0.1.0-models.tar.gz.part"
    assert part.stat().st_size == 1 << 20 and not (tmp_path / "output_graph.pb").exists()
    fetch.fetch(tmp_path, specs)
    assert server.requests[-1][1] == f"bytes={1 << 20}-"                 # resumed, not restarted
    assert server.sent <= len(archive) - (1 << 20)
    assert (tmp_path / "output_graph.pb").read_bytes() == graph and not part.exists()


@pytest.mark.parametrize("which", [0, 1])                              # the archive (streamed), a plain file
def test_fetch_continues_when_the_server_ignores_range(server, graph, tmp_path, which):
    specs = local_specs(server, graph)[which:which + 1]
    server.cut_after = 1 << 19 if which == 0 else 50_000                # bytes, within each file
    with pytest.raises(ModelFileError, match="interrupted"):
        fetch.fetch(tmp_path, specs)
    server.ignore_range = True                                           # answers 200 from byte 0
    fetch.fetch(tmp_path, specs)
    assert fetch.verified(specs[0], tmp_path) and len(list(tmp_path.iterdir())) == 1


def test_fetch_a_complete_part_is_not_downloaded_again(server, graph, tmp_path):
    spec = local_specs(server, graph)[2]                                 # texture_mesh.obj
    body = server.files["/voca/template/texture_mesh.obj"]
    (tmp_path / ".texture_mesh.obj.part").write_bytes(body)              # e.g. stopped before verifying
    fetch.fetch(tmp_path, [spec])
    assert server.requests[-1][1] == f"bytes={len(body)}-"               # the server answered 416
    assert (tmp_path / "texture_mesh.obj").read_bytes() == body


def test_fetch_refuses_a_corrupt_graph_and_deletes_it(server, graph, tmp_path):
    damaged = bytearray(graph)
    damaged[12345] ^= 0xFF
    server.files["/release/deepspeech-0.1.0-models.tar.gz"] = release_archive(bytes(damaged))
    with pytest.raises(ModelFileError, match=r"downloaded DeepSpeech v0\.1\.0 graph is damaged \(MD5 .*expected"):
        fetch.fetch(tmp_path, local_specs(server, graph)[:1])
    assert list(tmp_path.iterdir()) == []                                # neither the graph nor a part file


def test_fetch_refuses_a_corrupt_template_by_its_published_checksum(server, graph, tmp_path):
    path = "/voca/template/FLAME_sample.ply"
    body = bytearray(server.files[path])
    body[-1] ^= 0x01
    server.files[path] = bytes(body)
    with pytest.raises(ModelFileError, match="FLAME template is damaged .SHA-256"):
        fetch.fetch(tmp_path, local_specs(server, graph)[1:2])
    assert list(tmp_path.iterdir()) == []


def test_fetch_refuses_a_file_that_is_not_an_archive(server, graph, tmp_path):
    server.files["/release/deepspeech-0.1.0-models.tar.gz"] = b"<html>not found</html>" * 100
    with pytest.raises(ModelFileError, match="not a readable .tar.gz"):
        fetch.fetch(tmp_path, local_specs(server, graph)[:1])
    assert list(tmp_path.iterdir()) == []


def test_fetch_server_down_gives_a_clear_message(graph, tmp_path):
    with socket.socket() as probe:                                       # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = dataclasses.replace(fetch.PUBLIC_FILES[1], url=f"http://127.0.0.1:{port}/FLAME_sample.ply")
    with pytest.raises(ModelFileError, match=r"could not connect to 127\.0\.0\.1:\d+ .*refused.*Check the "
                                             r"internet connection"):
        fetch.fetch(tmp_path, [spec])


def test_fetch_http_error_names_the_status(server, graph, tmp_path):
    spec = dataclasses.replace(fetch.PUBLIC_FILES[2], url=f"{server.url}/nothing-here.obj")
    with pytest.raises(ModelFileError, match="answered 404"):
        fetch.fetch(tmp_path, [spec])


def voca_zip(voca_ckpt, shared_data, path, folder="", damage=False):
    """A zip laid out like VOCA's 'trained model' download: the three gstep_52280.model files."""
    with zipfile.ZipFile(path, "w") as z:
        for suffix in (".index", ".data-00000-of-00001"):
            data = bytearray(voca_ckpt.with_name(voca_ckpt.name + suffix).read_bytes())
            if damage and suffix.startswith(".data"):
                data[len(data) // 2] ^= 0xFF
            z.writestr(f"{folder}gstep_52280.model{suffix}", bytes(data))
        z.write(shared_data / "voca_official" / "gstep_52280.model.meta", f"{folder}gstep_52280.model.meta")
    return path


@pytest.mark.parametrize("folder", ["", "model/"])
def test_install_unpacks_the_voca_zip_and_status_reports_it(voca_ckpt, shared_data, tmp_path, folder):
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip", folder)
    models = tmp_path / "models"
    installed = fetch.install_voca_zip(archive, models)
    assert sorted(p.name for p in installed) == ["gstep_52280.model.data-00000-of-00001", "gstep_52280.model.index",
                                                 "gstep_52280.model.meta"]
    assert sorted(p.name for p in models.iterdir()) == sorted(p.name for p in installed)   # nothing else
    rows = {r.name: r for r in status.status(models)}
    voca_row = rows["gstep_52280.model.* (VOCA trained model)"]
    assert voca_row.state == status.OK and "8 speaking styles" in voca_row.detail
    assert rows["output_graph.pb"].state == status.MISSING and "models fetch" in rows["output_graph.pb"].detail


def test_install_refuses_a_damaged_checkpoint_and_installs_nothing(voca_ckpt, shared_data, tmp_path):
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip", damage=True)
    with pytest.raises(ModelFileError, match="not usable: .*damaged .checksum mismatch in tensor"):
        fetch.install_voca_zip(archive, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_install_refuses_other_archives_and_keeps_existing_files(voca_ckpt, shared_data, tmp_path):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="holds no VOCA checkpoint"):
        fetch.install_voca_zip(other, tmp_path / "models")
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with pytest.raises(ModelFileError, match="not a readable zip"):
        fetch.install_voca_zip(tmp_path / "not.zip", tmp_path / "models")
    models = tmp_path / "models"
    models.mkdir()
    (models / "gstep_52280.model.index").write_bytes(b"the user's own file")
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    with pytest.raises(ModelFileError, match="already exists .*--overwrite"):
        fetch.install_voca_zip(archive, models)
    assert (models / "gstep_52280.model.index").read_bytes() == b"the user's own file"
    fetch.install_voca_zip(archive, models, overwrite=True)
    assert status.status(models)[0].state == status.OK


@pytest.mark.parametrize("stage", ["write", "commit", "rename"])
def test_install_killed_leaves_nothing_the_next_install_does_not_sweep(voca_ckpt, shared_data, tmp_path, stage):
    """A kill -9 during an install (staging the files inside the model folder, beside the user's other model
    files) leaves its staging folder; the next install removes it and installs whole files."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[3]
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    models = tmp_path / "models"
    models.mkdir()
    (models / "output_graph.pb").write_bytes(b"the user's graph")
    code = "import sys; from voca_addon.core.models import fetch; fetch.install_voca_zip(sys.argv[1], sys.argv[2])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOCA_FAULT")}
    env.update(PYTHONPATH=str(root), VOCA_FAULT=f"{stage}:1:KILL")
    r = subprocess.run([sys.executable, "-c", code, str(archive), str(models)], env=env, cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert [p.name for p in models.iterdir() if p.is_dir()] != []          # what the kill left: a staging folder
    installed = fetch.install_voca_zip(archive, models)
    assert sorted(p.name for p in models.iterdir()) == sorted(["output_graph.pb"] + [p.name for p in installed])
    assert list(tmp_path.glob(".voca-*")) == []
    assert status.status(models)[0].state == status.OK


def test_status_and_install_from_the_command_line(voca_ckpt, shared_data, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    (models / "FLAME_sample.ply").write_bytes((shared_data / "flame" / "FLAME_sample.ply").read_bytes())
    (models / "output_graph.pb").write_bytes(b"\x0a" * 100)
    assert cli.main(["models", "status", "--folder", str(models)]) == 1        # the VOCA model is missing
    out = capsys.readouterr().out
    assert "ok        FLAME_sample.ply" in out and "different output_graph.pb: not the published file (MD5" in out
    assert "missing   gstep_52280.model.* (VOCA trained model): register at" in out
    archive = voca_zip(voca_ckpt, shared_data, tmp_path / "voca_model.zip")
    assert cli.main(["models", "install", str(archive), "--folder", str(models)]) == 0
    assert "installed" in capsys.readouterr().out
    assert cli.main(["models", "status", "--folder", str(models)]) == 1        # the texture files are missing
    assert capsys.readouterr().out.rstrip().endswith("2 missing")
    for name in ("texture_mesh.obj", "texture_mesh.png"):
        (models / name).write_bytes((shared_data / "flame" / name).read_bytes())
    assert cli.main(["models", "status", "--folder", str(models)]) == 0        # all usable (one different)
    assert capsys.readouterr().out.rstrip().endswith("all model files are present")
    data = models / "gstep_52280.model.data-00000-of-00001"
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    data.write_bytes(bytes(damaged))
    assert cli.main(["models", "status", "--folder", str(models)]) == 1        # a damaged checkpoint
    assert capsys.readouterr().out.rstrip().endswith("1 damaged")
    assert cli.main(["models", "install", str(tmp_path / "missing.zip"), "--folder", str(models)]) == 2
    assert "not a readable zip" in capsys.readouterr().err
