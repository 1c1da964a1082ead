"""The real window, first steps: the built zip installs and enables, the preferences check the model
paths, the sidebar's VOCA tab opens, Add FLAME head works, and the panel's pictures are what an artist
sees (cropped to the sidebar, no geometry)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.gui.conftest import CONDITION, EMOTION, pinned

PANEL_PICTURES = ("gui-not-flame.png", "gui-progress.png")      # + the panel and each sub-panel


def png_size(path: Path) -> tuple:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def png_rows(path: Path) -> list:
    """Decoded RGB(A) rows of an 8-bit non-interlaced PNG (filters undone), as bytes per row."""
    data = path.read_bytes()
    width, height = png_size(path)
    pos, chunks, channels = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            line[x] = (line[x] + (0, left, up, (left + up) // 2, _paeth(left, up, corner))[kind]) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


@pytest.mark.smoke
def test_gui_install_enables_the_built_zip(gui):
    entry = gui.scenario("install")
    assert "refused" not in entry, (
        f"Blender {gui.scenario('window_setup')['version']} (Debian's build, its system Python) refuses the "
        f"built zip: {entry['refused']} — the other GUI tests ran on the same zip without its wheels")
    assert entry["result"] == ["FINISHED"] and entry["enabled"], entry
    assert "/extensions/user_default/voca_addon/" in entry["file"], entry      # the installed copy
    assert entry["operators"] == ["animate_from_audio", "add_flame_head", "remove_animation", "add_emotions",
                                  "mark_emotion", "key_emotion"]
    setup = gui.scenario("window_setup")
    assert setup["version"].startswith(gui.config["blender"] + "."), (gui.config["suite"], setup)


@pytest.mark.smoke
def test_gui_bundled_wheels_serve_this_blenders_python(gui):
    """scipy comes from the zip's wheel for this Blender's Python (Debian's Blenders run their system
    Python: 3.13 in trixie, 3.14 in sid); PocketSphinx too where a wheel exists (3.13), and where none does
    (3.14) the phoneme detector says so in one line while the rest of the add-on works. threadpoolctl
    (every Python) comes from the zip too: the engine sets this Blender's BLAS threads through it."""
    entry = gui.scenario("install")
    python, (version, path) = entry["python"], entry["scipy"]
    assert version == pinned("scipy", python) and "/extensions/.local/lib/python" in path, entry
    assert pinned("threadpoolctl", python) and "/extensions/.local/lib/python" in entry["threadpoolctl"], entry
    available, reason = entry["detector"]
    if pinned("pocketsphinx", python):
        assert available and reason == "" and "/extensions/.local/lib/python" in entry["pocketsphinx"], entry
    else:
        assert not available and "\n" not in reason and "PocketSphinx" in reason and python in reason, entry
        assert "alignment file" in reason, entry                                  # says what still works


@pytest.mark.smoke
def test_gui_preferences_check_each_model_path(gui):
    checks = gui.scenario("preferences")["checks"]
    assert checks["voca"][0] and "8 speaking styles" in checks["voca"][1], checks
    assert checks["deepspeech"][0] and "frozen graph" in checks["deepspeech"][1], checks
    assert checks["template"][0] and "5023 vertices" in checks["template"][1], checks


@pytest.mark.smoke
def test_gui_sidebar_shows_the_voca_tab(gui):
    entry = gui.scenario("voca_tab")
    assert entry["category"] == "VOCA", entry


@pytest.mark.smoke
def test_gui_settings_add_a_flame_head_and_choose_style_and_emotion(gui):
    entry = gui.scenario("settings")
    assert entry["add_head"] == ["FINISHED"] and entry["vertices"] == 5023, entry
    assert entry["condition"] == str(CONDITION) and entry["emotion"] == EMOTION, entry


def test_gui_panel_pictures_are_cropped_to_the_sidebar(gui):
    """Each picture is as wide as the sidebar, shorter than the window, has content, and carries no
    marker colour left over from finding the headers and buttons."""
    entry = gui.scenario("panel_pictures")
    left, top, width, height = gui.scenario("window_setup")["sidebar"]
    window_height = gui.scenario("window_setup")["window"][1]
    assert {"Emotions", "Model files"} <= set(entry["subpanels"]), entry
    lines = entry["lines"]
    assert lines == sorted(set(lines)), lines               # each sub-panel opened by its click
    for name in entry["pictures"] + list(PANEL_PICTURES):
        path = gui.out / name
        assert path.is_file(), f"{name} was not taken"
        w, h = png_size(path)
        assert w == width and 40 <= h < window_height, (name, w, h)
        rows = png_rows(path)
        assert len(set(rows)) > 20, f"{name} is nearly blank"
        magenta = bytes((255, 0, 255))
        assert not any(magenta in row for row in rows), f"{name} shows the marker colour"


def test_gui_refused_non_flame_mesh_greys_the_button_with_the_reason(gui):
    entry = gui.scenario("refused_not_flame")
    assert entry["poll"] is False, entry
    assert "8 vertices" in entry["reason"] and "Add FLAME head" in entry["reason"], entry
    assert entry["reason"] in entry["invoked"]["raised"], entry              # the same words everywhere
    assert entry["changes"] == [], entry
