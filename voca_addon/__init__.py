"""VOCA for Blender: animate a FLAME head from speech, with numpy only.

The engine lives in :mod:`voca_addon.core` (no ``bpy``, no ``tensorflow``). This file only registers
the Blender layer; ``bpy`` is imported inside :func:`register`, so ``python -m voca_addon`` and the
core work outside Blender.
"""

__version__ = "0.1.0"


def register():
    from .blender import register as _register
    _register()


def unregister():
    from .blender import unregister as _unregister
    _unregister()
