"""Landmark pairs between FLAME and a target mesh: the 68 iBUG points on FLAME, and the pairs file.

The 68 iBUG facial landmarks (Sagonas et al. 2013: 0–16 jaw line, 17–26 brows, 27–35 nose, 36–47
eyes, 48–59 outer lips, 60–67 inner lips) as FLAME vertex ids are facts taken from the SAiD project's
``data/FLAME_landmarks.txt`` (yunik1004/SAiD, Apache-2.0; Park et al. 2024). Named landmark groups
used elsewhere (jaw, inner lips) index this list.

A pairs file has one pair per line, ``flame_vertex target_vertex`` (0-based ints; ``#`` starts a
comment; commas are accepted as separators).

Contract: stdlib + numpy; pure functions; user errors raise :class:`~..errors.InputError`.
"""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np

from ..errors import InputError

FLAME_NUM_VERTICES = 5023
FLAME_IBUG68 = np.array([  # iBUG landmark k → FLAME vertex id (SAiD, Apache-2.0)
    2210, 1963, 3056, 3424, 3423, 3421, 3419, 3416, 3414, 3635, 3643, 3646, 3650, 3652, 2004, 568, 728,
    2567, 337, 338, 3154, 3712, 3868, 2135, 27, 18, 1430,
    3560, 3561, 3501, 3564, 2751, 2793, 3556, 1676, 1623,
    2428, 2453, 2494, 3631, 2278, 2359, 3832, 1343, 1218, 1154, 995, 829,
    2820, 2864, 2774, 3543, 1657, 1749, 1703, 1774, 1802, 3503, 2905, 2881,
    2845, 2787, 3531, 1670, 1730, 1804, 3504, 2907], dtype=np.int64)
FLAME_EYEBALLS = (range(3931, 4477), range(4477, 5023))  # FLAME's two eyeball islands (vertex ids)
IBUG_CHIN = slice(6, 11)            # jaw line around the chin
IBUG_NOSE_BRIDGE = slice(27, 31)
IBUG_INNER_LIPS = slice(60, 68)
IBUG_INNER_LIP_UPPER, IBUG_INNER_LIP_LOWER = 62, 66
MIN_PAIRS = 4


def read_pairs(path) -> Tuple[np.ndarray, np.ndarray]:
    """Read a landmark pairs file.

    Returns
    -------
    flame_ids, target_ids : int64 [P]

    Raises
    ------
    InputError
        Missing/unreadable file, a line that is not two integers, a target vertex in two pairs.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"Landmark pairs file '{path}' was not found. Write one 'flame_vertex "
                         "target_vertex' pair per line.")
    pairs = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            words = line.split("#", 1)[0].replace(",", " ").split()
            if not words:
                continue
            try:
                if len(words) != 2:
                    raise ValueError
                pairs.append((int(words[0]), int(words[1])))
            except ValueError:
                raise InputError(f"'{path}' line {number}: '{line.strip()}' is not a pair "
                                 "'flame_vertex target_vertex' of two integers.") from None
    array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    targets, counts = np.unique(array[:, 1], return_counts=True)
    if np.any(counts > 1):                  # two FLAME points pulled to one vertex distort the fit
        vertex = int(targets[np.argmax(counts > 1)])
        lines = [int(f) for f in array[array[:, 1] == vertex, 0]]
        raise InputError(f"'{path}': target vertex {vertex} is paired with FLAME vertices {lines}; each target "
                         "vertex may pair once (pick the target vertex that matches each FLAME landmark).")
    return array[:, 0], array[:, 1]


def write_pairs(path, flame_ids, target_ids) -> None:
    """Write pairs as ``flame_vertex target_vertex`` lines."""
    with open(os.fspath(path), "w", encoding="ascii", newline="\n") as handle:
        handle.write("# flame_vertex target_vertex\n")
        for a, b in zip(np.asarray(flame_ids), np.asarray(target_ids)):
            handle.write(f"{int(a)} {int(b)}\n")


def check_pairs(flame_ids, target_ids, num_target_vertices: int) -> Tuple[np.ndarray, np.ndarray]:
    """Validate landmark ids against FLAME's and the target's vertex counts.

    Returns
    -------
    flame_ids, target_ids : int64 [P], P ≥ 4

    Raises
    ------
    InputError
        Fewer than 4 pairs, unequal lengths, ids out of range, a FLAME vertex used twice.
    """
    flame_ids = np.asarray(flame_ids, dtype=np.int64).ravel()
    target_ids = np.asarray(target_ids, dtype=np.int64).ravel()
    if flame_ids.shape != target_ids.shape:
        raise InputError(f"{flame_ids.size} FLAME landmarks but {target_ids.size} target landmarks; "
                         "give them in pairs.")
    if flame_ids.size < MIN_PAIRS:
        raise InputError(f"{flame_ids.size} landmark pairs given; at least {MIN_PAIRS} spread over the face "
                         "are needed (e.g. eye corners, nose tip, mouth corners, chin).")
    for ids, count, what in ((flame_ids, FLAME_NUM_VERTICES, "FLAME"),
                             (target_ids, num_target_vertices, "the target")):
        bad = ids[(ids < 0) | (ids >= count)]
        if bad.size:
            raise InputError(f"landmark vertex id {int(bad[0])} is out of range: {what} has {count} "
                             f"vertices (ids 0..{count - 1}). Check the pairs' order: flame_vertex first.")
    if np.unique(flame_ids).size != flame_ids.size:
        raise InputError("a FLAME landmark vertex is used in two pairs; each FLAME vertex may pair once.")
    return flame_ids, target_ids
