"""The issue's measures, written from its text (not from the code under test).

Inner-lip gap: distance between paired upper/lower inner-lip vertices; the issue's single figure is the mean
of the iBUG pairs 61–67, 62–66, 63–65. A phone's window takes the frames from ⌈(start − lead)·fps⌉ to
⌊(end + 0.04)·fps⌋.
"""
import math

import numpy as np

from voca_addon.core.character.landmarks import FLAME_IBUG68

IBUG_PAIRS = np.array([(FLAME_IBUG68[a], FLAME_IBUG68[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
FLOOR_MM = 1.0              # the floor in the middle of the line
REACH_MM = 0.3              # every pair reaches ≤ rest + 0.3 mm in a bilabial's window
UNCHANGED_MM = 0.01         # frames ≥ 150 ms from any p/b/m/f/v
FAR_S = 0.150


def gaps_mm(vertices, pairs):
    """[F, P] distances in mm."""
    v = np.asarray(vertices, np.float64)
    return np.linalg.norm(v[:, pairs[:, 0]] - v[:, pairs[:, 1]], axis=2) * 1e3


def window(phone, fps, lead=0.08, tail=0.04, num_frames=None):
    a = max(0, math.ceil((phone.start - lead) * fps - 1e-9))
    b = math.floor((phone.end + tail) * fps + 1e-9)
    if num_frames is not None:
        b = min(b, num_frames - 1)
    return a, b


def far_frames(track, num_frames, fps, labels=("P", "B", "M", "F", "V")):
    """Frames at least FAR_S from every listed phone."""
    t = np.arange(num_frames) / fps
    near = np.zeros(num_frames, bool)
    for p in track.phones:
        if p.phone in labels:
            near |= (t > p.start - FAR_S) & (t < p.end + FAR_S)
    return ~near


def floor_mm(rest_mm, ibug_rest_mm):
    """1.0 mm where the rest gap is at least the smallest iBUG pair's; toward the corners, where the rest
    face's own gap is smaller (and VOCA's own output presses them to 0.1–0.5 mm), 1.0 mm · (rest / it)²."""
    return FLOOR_MM * np.minimum(1.0, rest_mm / ibug_rest_mm.min()) ** 2
