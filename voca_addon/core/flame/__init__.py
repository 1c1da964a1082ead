"""FLAME's files: meshes in and out (:mod:`.meshio`, PLY/OBJ), the FLAME model pickle (:mod:`.flame_model`:
shape/expression/pose bases, joints, skinning), VOCA's texture (:mod:`.texture`) and FLAME's 68 iBUG
landmark vertices (:mod:`.landmarks`).

numpy (and the stdlib) only; imports :mod:`..formats` and nothing later in the pipeline.
"""
