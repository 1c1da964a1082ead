"""The real window, seen and touched like a person would: geometry, screenshots, keys, panel headers.

Runs INSIDE Blender (imported by :mod:`gui_driver`, never by pytest). Screenshots come from ImageMagick's
``import -window root`` (``bpy.ops.screen.screenshot`` gives black frames under Xvfb), keys and clicks
from ``xdotool`` (X's XTEST, like a keyboard). Pixel rectangles are X11's: origin at the top left,
``(left, top, width, height)`` in pixels; Blender's region coordinates (origin bottom left) are
converted by :func:`rect_of`.

Panels and buttons have no Python API for their position on screen, so they are found in
screenshots: lines of text (:func:`text_lines`: a closed sub-panel's header is one of the panel's last
lines) and, for buttons, bands of a :data:`MARKER` colour the theme is given for one screenshot (see
``gui_runs.tool_buttons``). A click there then acts as a person's would.

Contract: imports ``bpy``, ``numpy`` and the standard library; main thread only.
"""
from __future__ import annotations

import hashlib
import subprocess
from typing import List, Tuple

import bpy
import numpy as np

Rect = Tuple[int, int, int, int]            # X11 pixels: left, top, width, height
MARKER = (1.0, 0.0, 1.0)                    # a colour no Blender theme uses: magenta
MARKER_MIN_ROWS = 6                         # a button band is at least this many pixel rows high
TABS = 30                                   # pixels: the sidebar's tab column, at its right edge
BORDER = 8                                  # pixels: a region's bottom border is thinner than this


def window():
    return bpy.context.window_manager.windows[0]


def area(kind: str = "VIEW_3D"):
    return next(a for a in window().screen.areas if a.type == kind)


def region(kind: str = "UI", where=None):
    return next(r for r in (where or area()).regions if r.type == kind)


def override(region_kind: str = "UI", area_kind: str = "VIEW_3D"):
    """A context override as a click in that region of that area has (window, area, region)."""
    a = area(area_kind)
    return bpy.context.temp_override(window=window(), screen=window().screen, area=a,
                                     region=region(region_kind, a))


def rect_of(r) -> Rect:
    """An area's or region's rectangle in X11 screen pixels."""
    win = window()
    return int(win.x + r.x), int(win.height - (r.y + r.height)), int(r.width), int(r.height)


def status_bar_rect() -> Rect:
    """The status bar: the window's bottom strip below every area (a global area, not in screen.areas)."""
    win = window()
    bottom = min(a.y for a in win.screen.areas)
    return int(win.x), int(win.height - bottom), int(win.width), int(bottom)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def screenshot(path: str) -> str:
    """The whole X screen as a PNG at ``path`` (blocks ~0.2 s)."""
    run("import", "-window", "root", str(path))
    return str(path)


def screenshot_async(path: str) -> subprocess.Popen:
    """Start a screenshot and return at once, so Blender's event loop keeps running meanwhile."""
    return subprocess.Popen(["import", "-window", "root", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def crop(source: str, target: str, rect: Rect) -> str:
    left, top, width, height = rect
    run("convert", str(source), "-crop", f"{width}x{height}+{left}+{top}", "+repage", f"PNG24:{target}")
    return str(target)


def pixels(source: str, rect: Rect) -> np.ndarray:
    """uint8 [height, width, 3] RGB pixels of ``rect`` in a screenshot."""
    left, top, width, height = rect
    raw = subprocess.run(["convert", str(source), "-crop", f"{width}x{height}+{left}+{top}", "+repage",
                          "-depth", "8", "rgb:-"], capture_output=True, timeout=30, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def xdotool(*args: str) -> None:
    run("xdotool", *args)


def press(key: str, at: Tuple[int, int]) -> None:
    """Move the pointer to ``at`` (X11 pixels) and press ``key`` there, as a keyboard would."""
    xdotool("mousemove", str(at[0]), str(at[1]), "key", key)


def click(at: Tuple[int, int], button: int = 1) -> None:
    xdotool("mousemove", str(at[0]), str(at[1]), "click", str(button))


def centre(rect: Rect) -> Tuple[int, int]:
    return rect[0] + rect[2] // 2, rect[1] + rect[3] // 2


def wheel_with_ctrl(at: Tuple[int, int], down: bool = True) -> None:
    """Ctrl + mouse wheel over a tabbed region: Blender switches to the next (or previous) tab."""
    xdotool("mousemove", str(at[0]), str(at[1]), "keydown", "ctrl", "click", "5" if down else "4",
            "keyup", "ctrl")


def bands(mask_rows: np.ndarray, min_rows: int = MARKER_MIN_ROWS, bridge: int = 0) -> List[Tuple[int, int]]:
    """(first row, row count) of every run of True rows at least ``min_rows`` long (gaps of at most
    ``bridge`` rows joined)."""
    mask = mask_rows.astype(bool).copy()
    gaps = bands(~mask, 1) if bridge else []
    for start, count in gaps:
        if count <= bridge and start > 0 and start + count < len(mask):
            mask[start:start + count] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    runs = [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]
    return [r for r in runs if r[1] >= min_rows]


def text_lines(shot: str, rect: Rect, tabs: int = TABS) -> List[Tuple[int, int]]:
    """Lines of light text in ``rect`` (the rightmost ``tabs`` pixels, the sidebar's tabs, left out):
    [(top, height)] in pixels from the rectangle's top."""
    px = pixels(shot, rect)[:, 8:-tabs].astype(np.int16)
    light = px.min(axis=2) > 170
    return bands(light.sum(axis=1) >= 2, min_rows=5, bridge=3)


def background_rows(shot: str, rect: Rect, tabs: int = TABS) -> np.ndarray:
    """Rows of ``rect`` (its tab column left out) that are all the colour found just above its bottom
    edge (the region's background; the last rows are its border): bool [height]."""
    px = pixels(shot, rect)[:, :-tabs].astype(np.int16)
    ref = px[-BORDER, px.shape[1] // 2]
    return (np.abs(px - ref).max(axis=2) <= 2).all(axis=1)


def content_height(shot: str, rect: Rect, margin: int = 8) -> int:
    """Pixel rows from the top of ``rect`` to the last row that is not plain background, plus a margin."""
    busy = np.flatnonzero(~background_rows(shot, rect)[:-BORDER])
    return int(min(rect[3], (busy[-1] + 1 + margin) if len(busy) else rect[3]))


def banner_rect(shot: str, rect: Rect, margin: int = 6) -> Rect:
    """The part of ``rect`` (the status bar) covered by a report's coloured banner, or all of it."""
    px = pixels(shot, rect).astype(np.int16)
    coloured = np.flatnonzero(((px.max(axis=2) - px.min(axis=2)) > 20).any(axis=0))
    if not len(coloured):
        return rect
    left, right = max(0, coloured[0] - margin), min(rect[2], coloured[-1] + 1 + margin)
    return rect[0] + int(left), rect[1], int(right - left), rect[3]


def popup_rect(before: str, after: str, sidebar: Rect, margin: int = 2) -> Rect | None:
    """The block of the window above the status bar that changed between two screenshots and reaches
    outside the sidebar (whose own rows a run may change): a popup Blender opened, e.g. an error report
    shown over the window (Blender 5.x) instead of in the status bar (4.x); None when there is none."""
    win = window()
    rect = (int(win.x), 0, int(win.width), status_bar_rect()[1])
    changed = (np.abs(pixels(before, rect).astype(np.int16) - pixels(after, rect)).max(axis=2) > 8)
    outside = changed.copy()
    outside[:, max(0, sidebar[0] - rect[0]):sidebar[0] - rect[0] + sidebar[2]] = False
    found = bands(outside.sum(axis=1) >= 20, min_rows=8, bridge=4)
    if not found:
        return None
    top, height = max(found, key=lambda band: band[1])
    columns = np.flatnonzero(changed[top:top + height].any(axis=0))
    left, right = max(0, columns[0] - margin), min(rect[2], columns[-1] + 1 + margin)
    top, bottom = max(0, top - margin), min(rect[3], top + height + margin)
    return rect[0] + int(left), int(top), int(right - left), int(bottom - top)


def digest(shot: str, rect: Rect) -> str:
    return hashlib.sha1(pixels(shot, rect).tobytes()).hexdigest()
