"""Version-independent looks into Blender data for the tests (through the add-on's own compat layer),
and the marker for tests that need a Blender build with audio."""
import pytest

from voca_addon.blender import compat


def fcurves(action) -> list:
    """Every F-curve of an action, legacy (4.2) or slotted (4.4+)."""
    return list(compat.action_fcurves(action))


def strips(scene) -> list:
    """Top-level sequencer strips ([] without a sequence editor)."""
    editor = scene.sequence_editor
    return list(compat.sequencer_strips(editor)) if editor else []


def strips_all(scene) -> list:
    editor = scene.sequence_editor
    return list(compat.all_sequencer_strips(editor)) if editor else []


def new_sound_strip(scene, name, path, channel, frame):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return compat.sequencer_strips(editor).new_sound(name, str(path), channel, frame)


SOUND_STRIPS = 1 if compat.HAS_AUDIO else 0    # sound strips one run adds (none without audio)

needs_audio = pytest.mark.skipif(not compat.HAS_AUDIO, reason="this Blender build has no audio (Audaspace): "
                                 "the PyPI bpy 4.2 cannot load sounds; covered on 4.5 and later")
