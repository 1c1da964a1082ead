"""The Blender layer: registration of the add-on's classes (operators, properties, panels).

Contract: main thread only. Modules here import ``bpy`` and :mod:`voca_addon.core`; the core never
imports this package. Importing this package imports the class modules (and so ``bpy``): it is imported
only where ``bpy`` exists, and ``python -m voca_addon`` never loads it.

To add a class: append it to :data:`CLASSES` in dependency order (a PropertyGroup before the classes
whose properties point to it); it is registered in that order and unregistered in reverse.
"""

from . import fetch_operator, jobs, preferences    # infrastructure: model files, the job runner (import bpy)
from .speech import operators, panel, properties   # Animate from audio, the main panel, scene.voca
from .articulation import operators as articulation_operators, panel as articulation_panel
from .articulation import properties as articulation_properties                     # lip closures, knobs
from .emotion import operators as emotion_operators
from .liveliness import operators as liveliness_operators   # Mark as blink (the Living face sub-panel)
from .character import panel as character_panel   # the Character sub-panel (retargeting to any head)
from .exports import operators as export_operators, sequences as sequence_io

CLASSES: tuple = (      # bpy classes to register, in order
    properties.VOCA_PG_living,                  # scene.voca.living: before the group that points to it
    properties.VOCA_PG_scene,                   # registers Scene.voca in its register() classmethod
    *articulation_properties.CLASSES,           # Object.voca_articulation (knobs), Scene.voca_phones
    preferences.VOCA_AddonPreferences,
    preferences.VOCA_OT_check_model_files,
    *fetch_operator.CLASSES,
    *operators.CLASSES,
    *emotion_operators.CLASSES,
    *liveliness_operators.CLASSES,
    *sequence_io.CLASSES,
    *panel.CLASSES,                             # parent panel before its sub-panels
    *character_panel.CLASSES,                   # Scene.voca_character, fit / transfer / drive, sub-panel
    *articulation_operators.CLASSES,            # import alignment, word markers, re-apply
    *articulation_panel.CLASSES,                # the Articulation sub-panel
    *export_operators.CLASSES,                  # glTF / FBX / Alembic / USD export and its sub-panel
)


def register() -> None:
    """Register :data:`CLASSES` in order; on failure unregister those done and re-raise."""
    import bpy
    done = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            done.append(cls)
    except Exception:
        for cls in reversed(done):
            bpy.utils.unregister_class(cls)
        raise
    bpy.types.TOPBAR_MT_file_import.append(sequence_io.menu_import)
    bpy.types.TOPBAR_MT_file_export.append(sequence_io.menu_export)
    jobs.register()                             # live jobs cancelled when the file is closed


def unregister() -> None:
    """Unregister :data:`CLASSES` in reverse order (those not registered are skipped)."""
    import bpy
    jobs.unregister()                           # cancel live jobs before their operators go away
    bpy.types.TOPBAR_MT_file_import.remove(sequence_io.menu_import)
    bpy.types.TOPBAR_MT_file_export.remove(sequence_io.menu_export)
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", True):
            bpy.utils.unregister_class(cls)
