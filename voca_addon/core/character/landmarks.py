"""Landmark pairs between FLAME and a target mesh: the pairs file, over FLAME's 68 iBUG points
(:mod:`voca_addon.core.flame.landmarks`, whose names this module also offers to the Character stage).

A pairs file has one pair per line, ``flame_vertex target_vertex`` (0-based ints; ``#`` starts a
comment; commas are accepted as separators).

Contract: stdlib + numpy; pure functions; user errors raise :class:`~..errors.InputError`.
"""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np

from ..errors import InputError
from ..flame.landmarks import (FLAME_EYEBALLS, FLAME_IBUG68, FLAME_NUM_VERTICES,  # noqa: F401 (FLAME's
                               IBUG_CHIN, IBUG_INNER_LIP_LOWER, IBUG_INNER_LIP_UPPER,  # facts, used here
                               IBUG_INNER_LIPS, IBUG_NOSE_BRIDGE)                      # and by the stage)

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
    with open(path, "rb") as handle:
        raw = handle.read()
    # Windows editors save "Unicode" as UTF-16 with a byte-order mark: read it, as UTF-8 otherwise
    text = raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
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
