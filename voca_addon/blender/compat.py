"""Every difference between the supported Blender versions (4.2 LTS, 4.5 LTS, 5.0, 5.1, 5.2 LTS, 5.3), in one place.

Chosen by feature detection, never by version number, so a 4.3 or 4.4 (or a later release that keeps an
API) takes the right path by itself:

* **Actions.** 4.2 and 4.3 have legacy actions: F-curves live in ``Action.fcurves`` (groups in
  ``Action.groups``, ``fcurves.new(path, index, action_group=…)``). From 4.4 actions are *slotted and
  layered*: F-curves live in a channelbag of a keyframe strip of a layer, one channelbag per slot, and
  ``AnimData.action_slot`` picks the slot; 5.0 removed ``Action.fcurves``. ``fcurves.new`` takes
  ``group_name`` only in 5.0; in 4.4–4.5 a group is made with ``channelbag.groups.new`` and assigned.
* **Sequencer.** 4.2 has ``SequenceEditor.sequences`` / ``sequences_all``; 4.4+ ``strips`` /
  ``strips_all`` (5.0 removed the old names).
* **Image format.** 5.0 splits ``ImageFormatSettings.media_type`` (IMAGE / VIDEO / MULTI_LAYER_IMAGE)
  from ``file_format``; before it, ``file_format`` alone says it.
* **Materials.** 5.0 materials always use nodes (``use_nodes`` deprecated); 4.2 / 4.5 need it switched on.
* **Sounds.** From 5.3 ``new_sound`` reuses the sound data-block already loaded from the same file (a
  second strip of a file shares it; the call also takes a ``stream`` index); before, every call loaded
  its own. The writer needs no branch for it: it tags only a sound it created and removes a tagged sound
  only when nothing uses it, so a sound shared with the artist's strip is never theirs to lose.
* **Audio.** A Blender build without Audaspace (the PyPI ``bpy`` 4.2) cannot load sounds:
  :data:`HAS_AUDIO` is False there and callers skip the sound strip with one line saying so.

Contract: main thread only (``bpy``). Nothing here knows about VOCA; callers own naming and ownership.
"""
from __future__ import annotations

import atexit
import os
import sys
from typing import Iterator, List, Optional

import bpy

#: Actions have slots, layers and channelbags (4.4+); else the legacy ``Action.fcurves`` (4.2, 4.3).
SLOTTED_ACTIONS = "slots" in bpy.types.Action.bl_rna.properties
#: This build can load sounds into the sequencer (False in the PyPI ``bpy`` 4.2).
HAS_AUDIO = bool(getattr(bpy.app.build_options, "audaspace", True))
#: Render settings say IMAGE / VIDEO in ``media_type`` (5.0+).
HAS_MEDIA_TYPE = "media_type" in bpy.types.ImageFormatSettings.bl_rna.properties
#: The sequencer's strip collections are called ``strips`` (4.4+), else ``sequences``.
_STRIPS = "strips" if "strips" in bpy.types.SequenceEditor.bl_rna.properties else "sequences"
NO_AUDIO_MESSAGE = ("This Blender build has no audio support (Audaspace), so the sound strip was not "
                    "added; the animation is complete. Add the audio in a Blender with sound to hear it.")


def _takes(function, parameter: str) -> bool:
    return parameter in {p.identifier for p in function.parameters}


# ---------------------------------------------------------------------------- actions and F-curves

def new_action(name: str):
    """A new, empty action (no slot yet; :func:`assign_action` makes one)."""
    return bpy.data.actions.new(name)


def assign_action(anim_data, action, id_type: str, slot_name: str):
    """Assign ``action`` to ``anim_data`` with a slot for ``id_type`` (e.g. ``'KEY'``, ``'OBJECT'``).

    The slot already assigned is kept; else one named ``slot_name`` is created. Returns the slot, or
    None with legacy actions (where ``action.id_root`` is set instead).
    """
    if not SLOTTED_ACTIONS:
        action.id_root = id_type
        anim_data.action = action
        return None
    slot = anim_data.action_slot if anim_data.action == action else None
    if slot is None:
        slot = next((s for s in action.slots if s.target_id_type == id_type), None) \
            or action.slots.new(id_type=id_type, name=slot_name)
    anim_data.action = action
    anim_data.action_slot = slot
    return slot


def slot_identifier(anim_data) -> Optional[str]:
    """The identifier of the assigned slot (None without slots or without an assigned slot)."""
    if not SLOTTED_ACTIONS or anim_data is None or anim_data.action_slot is None:
        return None
    return anim_data.action_slot.identifier


def set_slot(anim_data, identifier: Optional[str]) -> None:
    """Re-assign the slot with ``identifier`` of the assigned action (no-op without slots)."""
    if SLOTTED_ACTIONS and identifier is not None and anim_data.action is not None:
        slot = anim_data.action.slots.get(identifier)
        if slot is not None:
            anim_data.action_slot = slot


def _channelbag(anim_data, ensure: bool):
    """The channelbag of the assigned action for the assigned slot (slotted actions only)."""
    action, slot = anim_data.action, anim_data.action_slot
    if action is None or slot is None:
        return None
    if not len(action.layers):
        if not ensure:
            return None
        action.layers.new(slot.name_display or "Layer")
    layer = action.layers[0]
    if not len(layer.strips):
        if not ensure:
            return None
        layer.strips.new(type="KEYFRAME")
    return layer.strips[0].channelbag(slot, ensure=ensure)


def new_fcurve(anim_data, data_path: str, index: int = 0, group: str = ""):
    """A new F-curve in the action assigned to ``anim_data`` (its slot), in group ``group``."""
    if not SLOTTED_ACTIONS:
        return anim_data.action.fcurves.new(data_path, index=index, action_group=group)
    fcurves = _channelbag(anim_data, ensure=True).fcurves
    if _takes(fcurves.bl_rna.functions["new"], "group_name"):
        return fcurves.new(data_path, index=index, group_name=group)
    fcurve = fcurves.new(data_path, index=index)
    if group:
        groups = _channelbag(anim_data, ensure=True).groups
        fcurve.group = groups.get(group) or groups.new(group)
    return fcurve


def find_fcurve(anim_data, data_path: str, index: int = 0):
    """The F-curve animating ``data_path[index]`` for ``anim_data`` (its action and slot), or None."""
    if anim_data is None or anim_data.action is None:
        return None
    if not SLOTTED_ACTIONS:
        return anim_data.action.fcurves.find(data_path, index=index)
    bag = _channelbag(anim_data, ensure=False)
    return bag.fcurves.find(data_path, index=index) if bag is not None else None


def _collections(action) -> List:
    """Every F-curve collection of ``action`` (all layers, strips and channelbags, or the legacy one)."""
    if not SLOTTED_ACTIONS:
        return [action.fcurves]
    return [bag.fcurves for layer in action.layers for strip in layer.strips
            for bag in getattr(strip, "channelbags", ())]


def action_fcurves(action) -> Iterator:
    """Every F-curve of ``action``, whatever slot it animates."""
    for fcurves in _collections(action):
        yield from fcurves


def remove_fcurve(action, fcurve) -> bool:
    """Delete ``fcurve`` from ``action``; True when it was there."""
    for fcurves in _collections(action):
        if any(fc == fcurve for fc in fcurves):
            fcurves.remove(fcurve)
            return True
    return False


def new_nla_strip(track, name: str, start: int, action):
    """An NLA strip of ``action`` on ``track`` (the same call on every version; 4.4+ picks the action's
    slot for the track's ID by itself)."""
    return track.strips.new(name, int(start), action)


def nla_strips(anim_data) -> Iterator:
    """Every NLA strip of ``anim_data`` (each track's top-level strips), none without animation data."""
    if anim_data is None:
        return iter(())
    return (strip for track in anim_data.nla_tracks for strip in track.strips)


# ---------------------------------------------------------------------------- sequencer

def sequencer_strips(editor):
    """The top-level strips of a sequence editor (``strips`` or ``sequences``); supports new_sound."""
    return getattr(editor, _STRIPS)


def all_sequencer_strips(editor):
    """Every strip, inside meta strips too (``strips_all`` or ``sequences_all``)."""
    return getattr(editor, _STRIPS + "_all")


# ---------------------------------------------------------------------------- render settings

RENDER_FORMAT_SETTINGS = ("media_type", "file_format", "color_mode") if HAS_MEDIA_TYPE \
    else ("file_format", "color_mode")


_FFMPEG_SETTINGS = ("format", "codec", "audio_codec", "audio_channels", "audio_mixrate", "constant_rate_factor",
                    "ffmpeg_preset")


def set_output_format(image_settings, file_format: str) -> None:
    """Pick the output format: ``'FFMPEG'`` (video) or an image format such as ``'PNG'``.

    The scene's FFmpeg settings (container, codecs) survive the switch: 4.2 resets the container to
    Matroska when the format becomes FFMPEG again.
    """
    ffmpeg = image_settings.id_data.render.ffmpeg
    kept = {name: getattr(ffmpeg, name) for name in _FFMPEG_SETTINGS}
    if HAS_MEDIA_TYPE:
        image_settings.media_type = "VIDEO" if file_format == "FFMPEG" else "IMAGE"
    image_settings.file_format = file_format
    for name, value in kept.items():
        if getattr(ffmpeg, name) != value:
            setattr(ffmpeg, name, value)


# ---------------------------------------------------------------------------- materials

def new_node_material(name: str):
    """A new material that renders from its node tree (4.2 / 4.5 need ``use_nodes``; 5.0 always does and
    deprecates the switch)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    return material


# ---------------------------------------------------------------------------- modifiers

def clear_flip_axis(mesh_cache_modifier) -> None:
    """No axis flipped on a Mesh Cache modifier (an enum set in 4.2, three booleans later)."""
    prop = mesh_cache_modifier.bl_rna.properties["flip_axis"]
    mesh_cache_modifier.flip_axis = set() if prop.type == "ENUM" else (False, False, False)


# ---------------------------------------------------------------------------- process exit

#: The bpy *module* (PyPI; ``binary_path`` is empty) can fail in its own teardown at interpreter exit
#: once Python-defined classes or property callbacks were registered, even after unregistering: 4.2
#: crashes (SIGSEGV), 4.5 hangs. Blender itself (a binary) is not affected; neither is anything written.
EXIT_UNSAFE = not bpy.app.binary_path


def in_blender_program() -> bool:
    """Whether this is the Blender program (its ``bpy``), not the bpy module in an ordinary Python: a process the
    program spawns runs its bundled Python, which cannot load Blender."""
    return not EXIT_UNSAFE


def exit_without_teardown() -> None:
    """Make this process leave without the bpy module's unsafe teardown however it ends (registered last, the
    hook runs first at exit): for a worker process that loaded Blender and would otherwise hang (4.5) there."""
    atexit.register(exit_now, 0)


def exit_now(status: int) -> None:
    """Leave the process with ``status`` without that teardown where it is unsafe (else return)."""
    if EXIT_UNSAFE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def forget_gltf_addon_at_exit() -> None:
    """Drop the glTF add-on's package from ``sys.modules`` when the interpreter exits.

    The PyPI ``bpy`` 4.2 module crashes (SIGSEGV) while finalising the interpreter after any glTF export,
    turning a finished batch's exit status into 139; with the package forgotten first it exits normally
    (checked on 4.2.23; harmless on 4.5 and later). Registered once per process.
    """
    if not _GLTF_EXIT_HOOK:
        atexit.register(sys.modules.pop, "io_scene_gltf2", None)
        _GLTF_EXIT_HOOK.append(True)


_GLTF_EXIT_HOOK: list = []
