"""Stage 3, the face model: the VOCA network (speech features → FLAME vertex offsets), FLAME meshes in and
out (PLY/OBJ), and emotions as per-vertex deltas from FLAME presets, delta files or target meshes.

numpy (and the stdlib) only; never ``bpy`` or ``tensorflow``.
"""
