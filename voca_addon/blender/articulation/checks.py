"""Whether a head's stored animation can be re-applied at all: every refusal, found before anything is written.

:func:`check_head` is called first by :func:`.writer.reapply` (every knob, Re-apply, Animate's closures) and by
:func:`.writer.set_track` (Import alignment) *before* the phone track, a curve or a scene property changes, so a
refused knob or import leaves the head, its action and the scene as they were. Refused, each in one line that
says what to do:

* the object, mesh or shape keys are linked from a library, or the mesh is a library override
  (:func:`..transaction.linked_problem`: the work would not be saved);
* the mesh is shared with another object (a linked duplicate, Alt+D): the shape keys and their curves are that
  head's too;
* the shape keys' action is shared with another head (Shift+D with *Duplicate Data › Action* off): writing the
  curves would move that head;
* VOCA's action is not the shape keys' active action (pushed down to the NLA, or another action assigned): the
  curves are written to the active action;
* the mesh's vertex count is not the one the animation was made for (vertices deleted or added in Edit Mode);
* one of VOCA's keys was deleted or renamed.

The scans over ``bpy.data`` run only when a user count says there is another user (a knob's hot path reads
a few properties).

Contract: main thread (``bpy``). Imports ``bpy``, :mod:`voca_addon.core.errors`, :mod:`..compat`,
:mod:`..transaction` and :mod:`..speech.writer`.
"""
from __future__ import annotations

import bpy

from ...core.errors import InputError
from .. import compat, transaction
from ..speech import writer

KNOBS = "its knobs"                     # what would change the other head (the knobs' wording)


def _names(names: list) -> str:
    return ", ".join(repr(n) for n in names[:3]) + (" …" if len(names) > 3 else "")


def _mesh_users(obj) -> list:
    if obj.data.users < 2:
        return []
    return sorted(o.name for o in bpy.data.objects if o.users and o.data is not None and o.data == obj.data
                  and o != obj)


def _action_users(key, action) -> list:
    """Other heads whose shape keys use ``action`` (as their action or in an NLA strip)."""
    anim_data = key.animation_data
    own = (anim_data.action == action) + bool(action.use_fake_user) + sum(    # this Key's own uses of it
        strip.action == action for strip in compat.nla_strips(anim_data))
    if action.users <= own:             # the scan below only when someone else uses it
        return []
    keys = {k for k in bpy.data.user_map(subset=[action]).get(action, ()) if isinstance(k, bpy.types.Key)}
    keys.discard(key)
    return sorted(o.name for o in bpy.data.objects
                  if o.users and getattr(o.data, "shape_keys", None) is not None and o.data.shape_keys in keys)


def voca_action(key):
    """VOCA's action of ``key``: the active action when the add-on made it, else one in its NLA strips, or None."""
    anim_data = key.animation_data
    if anim_data is None:
        return None
    if anim_data.action is not None and anim_data.action.get(writer.OWNED):
        return anim_data.action
    return next((strip.action for strip in compat.nla_strips(anim_data)
                 if strip.action is not None and strip.action.get(writer.OWNED)), None)


def _action_reason(obj, key) -> "str | None":
    anim_data = key.animation_data
    active = anim_data.action if anim_data is not None else None
    if active is not None and active.get(writer.OWNED):
        return None
    voca = voca_action(key)
    where = f"VOCA's action '{voca.name}'" if voca is not None else "VOCA's action"
    now = f"the action '{active.name}' is" if active is not None else "no action is"
    return (f"{where} is not the active action of the shape keys of '{obj.name}' ({now} active: pushed down "
            "to the NLA?); the knobs and lip closures act on the active action only: make VOCA's action active "
            "again (Shape Key Editor, action menu), or run Animate from audio again.")


def check_head(obj, store, made_for: int, what: str = KNOBS) -> None:
    """Raise :class:`InputError` when ``obj``'s stored animation cannot be re-applied (see the module docstring).

    ``store``: the Key's stored group (:data:`.writer.STORE`); ``made_for``: the vertices of the stored
    animation; ``what``: the words for what would change another head sharing the data (``"its knobs"``,
    ``"the imported phones"``).
    """
    linked = transaction.linked_problem(obj)
    if linked:
        raise InputError(linked)
    sharing = _mesh_users(obj)
    if sharing:
        raise InputError(f"'{obj.name}' shares its mesh and shape keys with {_names(sharing)} (a linked "
                         f"duplicate): {what} would change that head too. Make it single-user first "
                         "(Object › Relations › Make Single User › Object & Data).")
    key = obj.data.shape_keys
    action = key.animation_data.action if key.animation_data is not None else None
    sharing = _action_users(key, action) if action is not None else []
    if sharing:
        raise InputError(f"The animation of '{obj.name}' (action '{action.name}') is also used by {_names(sharing)}: "
                         f"{what} would change that head too. Make it single-user first (Shape Key Editor: "
                         "click the user count beside the action's name).")
    reason = _action_reason(obj, key)
    if reason:
        raise InputError(reason)
    have = len(obj.data.vertices)
    if have != made_for or len(key.reference_key.data) != made_for:
        raise InputError(f"The mesh of '{obj.name}' has {have} vertices, the animation was made for {made_for}: "
                         "run Animate from audio again.")
    missing = [str(n) for n in store.get("keys", ()) if key.key_blocks.get(str(n)) is None]
    if missing:
        raise InputError(f"The VOCA key '{missing[0]}' was deleted or renamed; run Animate from audio again.")


__all__ = ["KNOBS", "check_head", "voca_action"]
