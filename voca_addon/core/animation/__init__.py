"""Stage 4, animation data and exporters: :class:`~.shapekeys.ShapeKeyAnimation`, the one data type every
engine produces and every writer consumes (basis shapes, per-frame weights, fps, names); imported mesh
sequences factorised into that form; PC2 / OBJ exporters.

numpy (and the stdlib) only; never ``bpy`` or ``tensorflow``.
"""
