"""Emotions as per-vertex deltas on FLAME (:mod:`.emotions`) and where they come from (:mod:`.sources`):
FLAME expression presets, delta files, or sculpted target meshes beside a neutral one.

numpy only; imports :mod:`..formats` and :mod:`..flame`.
"""
