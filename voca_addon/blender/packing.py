"""A self-contained ``.blend``: the add-on's sounds and images packed into the file.

The sound strip and the head's texture otherwise point at the user's files by path, so a ``.blend``
copied to another machine plays silent and renders untextured. :func:`pack_owned` packs every sound and
image carrying ``voca_owned`` (an artist's own data is left as it is). Builds without audio
(:data:`.compat.HAS_AUDIO` False: the PyPI ``bpy`` 4.2) have no sound strip, so there is no sound to pack.

Contract: main thread only (``bpy``). Sizes: the packed sound is the audio file's bytes (a WAV of 10 s at
16 kHz: 320 kB), the texture 0.5 MB.
"""
from __future__ import annotations

import bpy

from ..core.errors import InputError
from .speech.writer import OWNED


def pack_owned() -> int:
    """Pack the add-on's sounds and images into the open file; returns how many were packed now.

    Raises
    ------
    InputError
        Blender could not read a file to pack (moved or deleted since it was loaded).
    """
    packed = 0
    for data in list(bpy.data.sounds) + list(bpy.data.images):
        if not data.get(OWNED) or data.packed_file is not None:
            continue
        try:
            data.pack()
        except RuntimeError as exc:
            raise InputError(f"Cannot pack '{bpy.path.abspath(data.filepath)}' into the .blend: "
                             f"{str(exc).strip()}. Check that the file still exists.") from None
        packed += 1
    return packed
