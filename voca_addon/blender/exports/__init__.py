"""Exports and sequences: everything that leaves Blender as files, or comes in as a mesh sequence.

- :mod:`.engines` — glTF/GLB, FBX, Alembic, USD through Blender's own exporters; a batch clip's outputs.
- :mod:`.operators` — the Export sub-panel.
- :mod:`.character` — a batch's outputs on a character, the dialogue library.
- :mod:`.sequences` — mesh sequences in (shape keys) and out (PC2, OBJ frames); its menu entries.
- :mod:`voca_addon.blender.exports.render`, :mod:`voca_addon.blender.exports.framewise` — headless MP4 / PNG renders, one frame at a time.
"""
