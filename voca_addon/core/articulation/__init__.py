"""Articulation: corrective lip keys (p/b/m closures, f/v tucks) and the artists' knobs.

Public API (numpy-side, no bpy)::

    from voca_addon.core.articulation import ArticulationSettings, add_corrections, apply_controls, \
        CORRECTION_NAMES

VOCA's own keys and bias are never changed by the corrections: they are separate shape keys
(:data:`CORRECTION_NAMES`) in ``ShapeKeyAnimation.corrections``; ``anim.exact()`` drops them.
See docs/articulation.md.
"""
from .closures import CORRECTION_NAMES, add_corrections
from .controls import ArticulationSettings, apply_controls
from .lipline import LipLine, lip_line

__all__ = ["ArticulationSettings", "CORRECTION_NAMES", "LipLine", "add_corrections", "apply_controls", "lip_line"]
