"""Lip closures and the articulation knobs on the head: corrective keys and curves re-applied from VOCA's
exact weights, non-destructively.

What :func:`write_articulation` stores and writes (after :func:`..speech.writer.write_animation`, inside the run's
transaction, in either mode):

* ``Key["voca_exact_weights"]``, ``["voca_exact_basis"]``, ``["voca_exact_bias"]``: VOCA's exact weights at
  the scene's rate, float32 ``[F · D]``, and its basis ``[D · V · 3]`` and bias ``[V · 3]`` (ID property
  arrays: saved in the .blend, restored by undo, copied and deleted with the Key, and snapshot by
  :mod:`..transaction` like the Key's other custom properties). The basis is kept although the keys hold it:
  a key holds ``Basis + basis[k]`` in float32, and ``co − Basis`` differs from ``basis[k]`` in the last bits,
  which the closure solve can turn into a visibly different weight (48 µm on one frame of the official
  clip); 3 MB for 50 keys;
* ``Key["voca_articulation"]``: a group with the write mode, the clip's frames, rate and first frame, the VOCA
  key names in curve order (bias last; none in ``'per_frame'`` mode), the phone track (JSON text), the correction keys made (``{core name: key
  name}``) and a digest of every curve as the add-on last wrote it;
* the correction keys ``voca_lips_close`` / ``voca_lips_tuck`` (relative to the Basis, holding ``basis.co +
  correction basis``), listed in ``Key["voca_correction_keys"]``, keyed in VOCA's owned action (group
  ``VOCA closures``) only around the phones that need them: the frames where the weight is not zero and
  one zero key on each side; nothing else. A key's shape is the field the core solved for the phone track
  (it follows the track, not the knobs) and is rewritten when the track changes (Import alignment), unless the
  artist sculpted it since (then it is left and named, like an edited curve).

:func:`reapply` rebuilds VOCA's exact animation from the stored arrays (the template: the Key's Basis), runs :func:`voca_addon.core.articulation.apply_controls` with the head's
knobs (``obj.voca_articulation``) and rewrites the curves whose values changed: VOCA's 50 curves (``weights /
s_k``), the bias key's one value (the speech strength scales it), the correction curves. With the closures
switch off the correction keys are muted (the evaluated mesh is VOCA's exact result) and their curves kept;
those mutes are recorded (``store["muted"]``) and only they are undone with the switch on: a correction key the
artist muted stays muted and is named. A curve whose points no longer match the digest of what the add-on wrote
was edited by hand: it is left as it is and named in one line; so is one the add-on wrote and the artist
deleted (and a correction key deleted), until Re-apply (``force``) brings it back. Every refusal
(:func:`.checks.check_head`) comes before the first write. At the knobs' defaults the VOCA curves hold the
stored weights bit for bit.

**Per-frame mode** (one key per frame holding VOCA's whole frame): the closures are the same two corrective keys
*beside* the frame keys, solved on VOCA's exact motion, keyed only around the phones; the frame keys are never
touched, so the switch off (the keys muted) or ``--no-closures`` (no keys) gives VOCA's exact frames, and
closure strength / mouth close re-apply in milliseconds. Speech strength and smoothing would mean rewriting every
frame key (the whole mesh per frame): in this mode they are not applied and the status line says so
(docs/articulation.md argues the choice).

:func:`remove_articulation` removes the correction keys, their curves and both properties (Remove VOCA
animation and every re-run call it first).

Contract: main thread only (``bpy``, through :mod:`..compat`). Imports numpy, :mod:`voca_addon.core`
(``core.articulation`` lazily), :mod:`..speech.writer`, :mod:`..keyframes`, :mod:`..compat` and this package's
:mod:`.checks`, :mod:`.curves`. Arrays: float32.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import InputError
from . import checks, curves
from .. import compat, keyframes
from ..speech import writer
from .curves import DELETED, support
from ..keyframes import CONSTANT, LINEAR

EXACT = "voca_exact_weights"            # Key property: float32 [F · D], VOCA's exact weights (scene rate)
EXACT_BASIS = "voca_exact_basis"        # Key property: float32 [D · V · 3], VOCA's exact basis
EXACT_BIAS = "voca_exact_bias"          # Key property: float32 [V · 3], VOCA's exact bias
STORE = "voca_articulation"             # Key property group: what re-applying needs (see the docstring)
CORRECTION_KEYS = "voca_correction_keys"   # Key property: the correction keys made here
GROUP = "VOCA closures"                 # F-curve group of the correction curves
BILABIALS, LABIODENTALS = ("P", "B", "M"), ("F", "V")
FORMAT = 1                              # version of the stored group


@dataclass(frozen=True)
class ReapplyReport:
    """What :func:`reapply` did: curves rewritten, curves left because edited by hand, closures on or off."""

    rewritten: int
    edited: tuple
    closures: bool
    line: Optional[str] = None          # why there are no closures (no phone track), if so
    muted: tuple = ()                   # correction keys the artist muted (left muted)

    def edited_line(self) -> Optional[str]:
        """One line naming the hand-edited (or deleted: ``"NAME (deleted)"``) curves left as they are, or None."""
        if not self.edited:
            return None
        names = ", ".join(f"'{n[:-len(DELETED)]}' (deleted)" if n.endswith(DELETED) else f"'{n}'"
                          for n in self.edited[:4]) + (" …" if len(self.edited) > 4 else "")
        back = ("; Re-apply brings deleted ones back, a lip correction while Lip closures are on"
                if any(n.endswith(DELETED) for n in self.edited) else "")
        return (f"Left {len(self.edited)} curve(s) you edited by hand as they are: {names} "
                f"(a knob never overwrites your edits{back}; Remove and re-run to reset them).")

    def status(self) -> str:
        """The status line: the edits left, the artist's mutes kept, why there are no closures ("" if none)."""
        muted = (f"Left {', '.join(repr(n) for n in self.muted)} muted as you muted it (unmute it for its "
                 "closures)." if self.muted else None)
        return " ".join(part for part in (self.edited_line(), muted, self.line) if part)


# ---------------------------------------------------------------------------- stored data

def _key(obj):
    return obj.data.shape_keys if obj is not None and obj.type == "MESH" else None


def has_articulation(obj) -> bool:
    """Whether ``obj`` carries stored exact weights the knobs can re-apply (reads properties only)."""
    key = _key(obj)
    return key is not None and all(p in key for p in (EXACT, EXACT_BASIS, EXACT_BIAS, STORE))


def transferred(obj) -> bool:
    """Whether ``obj`` holds VOCA keys without the stored weights the knobs need (a Transfer's target, an Import
    sequence without audio, a head animated by a version before the knobs)."""
    key = _key(obj)
    return key is not None and bool(key.get(writer.OWNED_KEYS)) and not has_articulation(obj)


def no_knobs_reason(obj) -> Optional[str]:
    """Why the knobs cannot act on ``obj`` (reads properties only), or None when they can."""
    if has_articulation(obj):
        return None
    if transferred(obj):
        from ..character.data import FIT_PROPERTY
        if FIT_PROPERTY in obj:                 # fitted for the Character panel: its keys came from Transfer
            return (f"The VOCA keys of '{obj.name}' came from Transfer: its knobs and Lip closures are the source "
                    "head's — set them on the head, then Transfer again.")
        return (f"The VOCA keys of '{obj.name}' hold no stored weights for the knobs (an Import sequence without "
                "audio, or an animation made before the knobs): run Animate from audio, or import with audio, to "
                "use them.")
    return f"'{getattr(obj, 'name', None)}' has no VOCA animation: run Animate from audio first."


def track_to_text(track) -> str:
    """A phone track as JSON text (stored in the .blend)."""
    if track is None:
        return ""
    return json.dumps({"source": track.source, "warnings": list(track.warnings),
                       "phones": [[p.phone, float(p.start), float(p.end), p.word] for p in track.phones]})


def track_from_text(text: str):
    """The phone track stored by :func:`track_to_text`, or None."""
    if not text:
        return None
    from ...core.phonemes import Phone, PhoneTrack
    data = json.loads(text)
    return PhoneTrack(tuple(Phone(str(p), float(s), float(e), str(w)) for p, s, e, w in data["phones"]),
                      str(data["source"]), tuple(data.get("warnings", ())))


def stored_track(obj):
    """The phone track stored with ``obj``'s animation, or None."""
    return track_from_text(str(_key(obj)[STORE].get("phones", ""))) if has_articulation(obj) else None


def _store(obj, scene, anim: ShapeKeyAnimation, written: writer.WriteReport, track) -> None:
    key = obj.data.shape_keys
    weights = np.ascontiguousarray(anim.resampled(writer.scene_fps(scene)).exact().weights, np.float32)
    key[EXACT] = weights.ravel()
    key[EXACT_BASIS] = np.ascontiguousarray(anim.basis, np.float32).ravel()
    key[EXACT_BIAS] = np.ascontiguousarray(anim.bias, np.float32).ravel()
    key[STORE] = {"format": FORMAT, "mode": written.mode, "frames": int(weights.shape[0]),
                  "dims": int(weights.shape[1]), "fps": float(written.fps), "start": int(written.frame_start),
                  "keys": list(written.key_names) if written.mode == "shape_keys" else [], "names": list(anim.names), "phones": track_to_text(track),
                  "corrections": {}, "digests": {}, "muted": []}


def set_track(obj, scene, track) -> ReapplyReport:
    """Store ``track`` as the animation's phone track (an imported alignment) and re-apply; every check first
    (:func:`.checks.check_head`): a refused track changes nothing."""
    if not has_articulation(obj):
        raise InputError(f"'{getattr(obj, 'name', None)}' has no VOCA animation to close the lips of; run "
                         "Animate from audio on it first.")
    key = obj.data.shape_keys
    store = key[STORE]
    checks.check_head(obj, store, len(key[EXACT_BIAS]) // 3, "the imported phones")
    before = str(store.get("phones", ""))
    store["phones"] = track_to_text(track)
    try:
        return reapply(obj, scene, what="the imported phones")
    except BaseException:
        store["phones"] = before        # refused after all (e.g. a knob past Blender's slider limit)
        raise


def _stored_animation(key) -> tuple:
    """(ShapeKeyAnimation rebuilt from the Key at the scene rate, the stored group) — see the docstring."""
    store = key[STORE]
    frames, dims = int(store["frames"]), int(store["dims"])
    weights = np.asarray(key[EXACT], dtype=np.float32).reshape(frames, dims)
    names = [str(n) for n in store["keys"]]
    ref = writer.key_co(key.reference_key)
    basis = np.asarray(key[EXACT_BASIS], dtype=np.float32).reshape(dims, len(ref), 3)
    bias = np.asarray(key[EXACT_BIAS], dtype=np.float32).reshape(len(ref), 3)
    labels = tuple(str(n) for n in store.get("names", ())) or tuple(names[:-1])
    return ShapeKeyAnimation(basis, bias, weights, float(store["fps"]), ref, labels), store


# ---------------------------------------------------------------------------- knobs → settings

def settings_of(obj):
    """The head's knobs (``obj.voca_articulation``) as :class:`~voca_addon.core.articulation.ArticulationSettings`
    (the defaults when the property is not registered)."""
    from ...core.articulation import ArticulationSettings
    props = getattr(obj, "voca_articulation", None)
    if props is None:
        return ArticulationSettings()
    return ArticulationSettings(closures=bool(props.closures),
                                closure_strength=round(float(props.closure_strength), 6),
                                speech_strength=round(float(props.speech_strength), 6),
                                mouth_close=round(float(props.mouth_close), 6),
                                smoothing_ms=round(float(props.smoothing_ms), 6))


# ---------------------------------------------------------------------------- write / re-apply

def artist_changes(obj) -> tuple:
    """(edited, muted): what the artist changed by hand in ``obj``'s stored VOCA animation — the curves edited
    or deleted (``"NAME (deleted)"``), the correction shapes sculpted (``"NAME (shape)"``), the correction keys
    they muted — which a re-run of Animate replaces. Read before the run writes anything; empty without one."""
    if not has_articulation(obj):
        return (), ()
    key = obj.data.shape_keys
    store = key[STORE]
    digests = dict(store.get("digests", {}))
    keys = [str(n) for n in store.get("keys", ())]
    made = [str(n) for n in dict(store.get("corrections", {})).values()]
    edited = []
    for name in keys + made:
        interpolation = CONSTANT if keys and name == keys[-1] else LINEAR
        fcurve = compat.find_fcurve(key.animation_data, keyframes.value_path(name)) if key.animation_data else None
        block = key.key_blocks.get(name)
        if name in digests and (fcurve is None or block is None):
            edited.append(name + DELETED)
        elif fcurve is not None and curves.curve_edited(fcurve, name, digests, interpolation):
            edited.append(name)
        if block is not None and name in made and curves.shape_edited(block, digests):
            edited.append(name + " (shape)")
    ours = {str(n) for n in store.get("muted", ())}
    muted = [name for name in made if key.key_blocks.get(name) is not None and key.key_blocks[name].mute
             and name not in ours]
    return tuple(edited), tuple(muted)


def replaced_line(changes: tuple) -> Optional[str]:
    """The line a re-run gives for :func:`artist_changes` it replaced, or None when there were none."""
    edited, muted = changes
    if not edited and not muted:
        return None
    parts = []
    if edited:
        parts.append(f"{len(edited)} curve(s) you edited by hand ({', '.join(repr(n) for n in edited[:4])}"
                     f"{' …' if len(edited) > 4 else ''})")
    if muted:
        parts.append(f"your mute of {', '.join(repr(n) for n in muted)}")
    return (f"This run replaced {' and '.join(parts)} with VOCA's new result (Edit › Undo brings them back; the "
            "knobs never overwrite your edits, a re-run does).")


def write_articulation(obj, scene, anim: ShapeKeyAnimation, written: writer.WriteReport, outcome,
                       replaced: tuple = ((), ())) -> list:
    """After the speech is written: store VOCA's exact weights and the phone track, write the corrections.

    ``outcome``: the run's :class:`voca_addon.blender.articulation.phones.PhoneOutcome`, or None (closures not asked for: the
    exact weights are still stored, so the knobs work). ``replaced``: :func:`artist_changes` read before the run
    wrote anything. Returns one line per thing to tell the artist; the head's status line (the Articulation
    panel's) becomes the run's: what it replaced and what the knobs have to say, nothing from before the run.
    """
    remove_articulation(obj)
    if written.mode not in writer.MODES:
        raise InputError(f"Unknown write mode '{written.mode}'.")
    track = outcome.track if outcome is not None else None
    _store(obj, scene, anim, written, track)
    done = reapply(obj, scene)
    told = replaced_line(replaced)
    lines = [told] if told else []
    if hasattr(obj, "voca_articulation"):        # registered (the panel's); headless runs have no status line
        obj.voca_articulation.status = " ".join(part for part in (told, done.status()) if part)
    if outcome is not None and outcome.message:
        lines.append(outcome.message)
    if track is not None and done.closures:
        lines.append(closure_line(track))
    return lines


def closure_line(track) -> str:
    """``lip closures on 5 p/b/m and 3 f/v (aligned)`` (a detected track says it was heard as US English)."""
    phones = [p.phone for p in track.phones]
    closes = sum(p in BILABIALS for p in phones)
    tucks = sum(p in LABIODENTALS for p in phones)
    return f"lip closures on {closes} p/b/m and {tucks} f/v ({track.label})"


def reapply(obj, scene=None, force: bool = False, what: str = checks.KNOBS) -> ReapplyReport:
    """Re-apply the head's knobs from the stored exact weights and phone track (see the module docstring).

    Speed (issue 18: a knob on 60 s at 60 fps in < 0.1 s; ``tools/bench_articulation_blender.py``): VOCA's 50
    curves depend only on speech strength and smoothing, so when those equal what the curves were last written
    with (``store["speech"]``) they are not even computed (a closure knob touches 2 curves and 2 keys); a curve
    or key shape whose new data hash like what the add-on last wrote is not read; a changed one is read once
    (the hand-edit check) and written with one ``foreach_set``. ``force`` (the Re-apply button) checks every
    curve again and brings back a curve or correction key the artist deleted (a knob leaves it deleted and
    names it, like an edited curve). A correction key muted by the artist stays muted (named in the status);
    the add-on's own mutes (closures off) are recorded in ``store["muted"]`` and undone when they come back on.

    Raises
    ------
    InputError
        Every refusal of :func:`.checks.check_head` (no stored animation, a shared mesh or action, VOCA's action
        not the active one, another vertex count, a VOCA key deleted or renamed; ``what`` names what would
        change another head), found before anything is written; a knob past Blender's slider limit.
    """
    from ...core.articulation import apply_controls
    if not has_articulation(obj):
        raise InputError(f"'{getattr(obj, 'name', None)}' has no VOCA animation to adjust; run Animate from "
                         "audio on it first.")
    key = obj.data.shape_keys
    checks.check_head(obj, key[STORE], len(key[EXACT_BIAS]) // 3, what)      # before anything is written
    anim, store = _stored_animation(key)
    track = track_from_text(str(store.get("phones", "")))
    settings = settings_of(obj)
    lines = []
    per_frame = str(store.get("mode", "shape_keys")) == "per_frame"
    if per_frame and (settings.speech_strength != 1.0 or settings.smoothing_ms != 0.0):
        lines.append("Speech strength and smoothing act in 'Shape keys' mode only (the per-frame keys hold "
                     "VOCA's frames); the closure knobs still work.")
        settings = _with(settings, speech_strength=1.0, smoothing_ms=0.0)
    if settings.closures and track is None:
        lines.append("No phone track: import an alignment file or give a transcript for lip closures.")
        settings = _with(settings, closures=False)
    line = " ".join(lines) or None
    result = apply_controls(anim, track, settings, emotion_offset(obj) if settings.closures else None)
    digests = dict(store.get("digests", {}))
    edited: list = []
    speech = [float(settings.speech_strength), float(settings.smoothing_ms)]
    rewritten = 0
    if not per_frame and (force or [float(v) for v in store.get("speech", ())] != speech):
        rewritten += _write_speech(key, settings, result, store, digests, edited, force)
        store["speech"] = speech
    muted: list = []
    rewritten += _write_corrections(obj, key, result, store, digests, (edited, muted), anim.template, force)
    store["digests"] = digests
    # The edits left earlier stay named while they stand (a pass whose new data equal what the add-on last
    # wrote does not read a curve, so it would not see them again): only those few are read here.
    keys = [str(n) for n in store.get("keys", ())]
    bias = keys[-1] if keys else None                   # VOCA's bias curve: one CONSTANT key
    edited = sorted(n for n in set(edited) | {str(n) for n in store.get("edited", ())}
                    if _still_edited(key, n, digests, CONSTANT if n == bias else LINEAR))
    store["edited"] = edited
    if rewritten:                   # foreach_set tags nothing: the evaluated copy of the action would go stale
        key.animation_data.action.update_tag()
        key.update_tag()
    return ReapplyReport(rewritten, tuple(edited), result.corrections is not None, line, tuple(muted))


def _still_edited(key, name: str, digests: dict, interpolation: int) -> bool:
    """Whether the curve (or ``"NAME (shape)"``: the correction key's shape) ``name`` still differs from what the
    add-on last wrote there (:mod:`.curves`: its points, or a key of another ``interpolation``); ``"NAME
    (deleted)"``: whether the curve or its key is still gone."""
    if name.endswith(DELETED):
        base = name[:-len(DELETED)]
        return (key.key_blocks.get(base) is None
                or compat.find_fcurve(key.animation_data, keyframes.value_path(base)) is None)
    if name.endswith(" (shape)"):
        block = key.key_blocks.get(name[:-len(" (shape)")])
        return block is not None and curves.shape_edited(block, digests)
    fcurve = compat.find_fcurve(key.animation_data, keyframes.value_path(name))
    return fcurve is not None and curves.curve_edited(fcurve, name, digests, interpolation)


def emotion_offset(obj) -> Optional[np.ndarray]:
    """The static face the emotion keys add (a smile pulls the corners): float32 [V, 3] metres, or None.

    Sum over ``obj``'s emotion keys (:func:`voca_addon.blender.emotion.writer.emotion_keys`, unmuted) of ``(key − its relative
    key) · value``, where ``value`` is the key's strength *at the time of this call*: the keyed curve's
    largest magnitude (Animate keys it 0 → strength → 0: the held strength), else the slider's value. The
    closures are solved on VOCA's motion plus this offset (:func:`~voca_addon.core.articulation.apply_controls`).
    An emotion changed later (value, curve or shape) is seen at the next re-apply (any knob, or Re-apply);
    on the ramps in and out the emotion is partial and the closure was solved for the full strength.
    """
    from ..emotion import writer as emotion_writer
    key = _key(obj)
    offset = None
    for name in emotion_writer.emotion_keys(obj).values():
        block = key.key_blocks.get(name)
        if block is None or block.mute or block.relative_key is None or block == block.relative_key:
            continue
        fcurve = compat.find_fcurve(key.animation_data, keyframes.value_path(name))
        points = keyframes.curve_points(fcurve)[:, 1] if fcurve is not None else np.zeros(0, np.float32)
        value = float(points[np.argmax(np.abs(points))]) if len(points) else float(block.value)
        if value == 0.0:
            continue
        delta = (writer.key_co(block) - writer.key_co(block.relative_key)) * np.float32(value)
        offset = delta if offset is None else offset + delta
    return offset


def _with(settings, **values):
    from dataclasses import replace
    return replace(settings, **values)


def _write_speech(key, settings, result, store, digests, edited, force: bool) -> int:
    """VOCA's curves (``weights / s_k``) and the bias key's value; returns how many curves changed.

    Every key's slider range is widened to hold its new values (Blender clamps a key's value to it).

    Raises
    ------
    InputError
        A knob pushes a key past Blender's limit of ±10 (nothing is written then).
    """
    names = [str(n) for n in store["keys"]]
    frames = int(store["start"]) + np.arange(result.num_frames, dtype=np.float64)
    scales = dict(key.get(writer.KEY_SCALES, {}))
    columns = result.weights.astype(np.float32) / np.array([scales.get(n, 1.0) for n in names[:-1]], np.float32)
    bias = np.float32(settings.speech_strength)      # core: bias × s; the key keeps VOCA's bias shape
    peak = max(float(np.abs(columns).max(initial=0.0)), float(bias))
    if peak > writer.SLIDER_LIMIT:
        raise InputError(f"These knobs take a VOCA key to {peak:.1f}, past Blender's limit of "
                         f"{writer.SLIDER_LIMIT:g}; lower the speech strength.")
    rewritten = 0
    highs, lows = columns.max(axis=0, initial=0.0), columns.min(axis=0, initial=0.0)
    for k, name in enumerate(names[:-1]):
        _widen(key.key_blocks[name], np.array([highs[k], lows[k]]))
        rewritten += curves.write_curve(key, name, frames, columns[:, k], LINEAR, "VOCA", digests, edited, force)
    _widen(key.key_blocks[names[-1]], np.array([bias]))
    return rewritten + curves.write_curve(key, names[-1], frames[:1], np.array([bias], np.float32), CONSTANT, "VOCA",
                                          digests, edited, force)


def _widen(block, values: np.ndarray) -> None:
    """Widen ``block``'s slider range to hold ``values`` (within ±10), as the writer sets it."""
    high = min(writer.SLIDER_LIMIT, math.ceil(max(1.0, float(values.max(initial=0.0)))))
    low = max(-writer.SLIDER_LIMIT, math.floor(min(0.0, float(values.min(initial=0.0)))))
    if high > block.slider_max:
        block.slider_max = high
    if low < block.slider_min:
        block.slider_min = low


def _write_corrections(obj, key, result, store, digests, notes, ref: np.ndarray, force: bool) -> int:
    """Correction keys (made on first use, muted with the closures off) and their curves around the phones.

    ``notes``: (edited, muted) lists to extend. A mute is the add-on's when it made it (``store["muted"]``; a
    store written before that list existed: every muted correction key, as the add-on then unmuted them all);
    any other mute is the artist's and stays. A correction key the add-on made and the artist deleted stays
    deleted (named like an edited curve) unless ``force``.
    """
    edited, muted = notes
    made = dict(store.get("corrections", {}))
    blocks = {core: key.key_blocks.get(name) for core, name in made.items()}
    ours = ({str(n) for n in store["muted"]} if "muted" in store
            else {b.name for b in blocks.values() if b is not None and b.mute})
    ours &= {b.name for b in blocks.values() if b is not None and b.mute}     # unmuted since: no longer ours
    corrections = result.corrections
    if corrections is None:
        for block in blocks.values():
            if block is not None and not block.mute:
                block.mute = True
                ours.add(block.name)
        store["muted"] = sorted(ours)
        return 0
    start = int(store["start"])
    rewritten = 0
    for c, core_name in enumerate(corrections.names):
        block = blocks.get(core_name)
        target = ref + corrections.basis[c].astype(np.float32)        # the key's data: Basis + field
        if block is None and core_name in made and not force:
            edited.append(made[core_name] + DELETED)                # the artist deleted (or renamed) it
            continue
        if block is None:
            block = _new_correction_key(obj, core_name, target)
            made[core_name] = block.name
            store["corrections"] = made
            digests[curves.SHAPE + block.name] = curves.digest(writer.key_co(block))
        else:
            rewritten += curves.write_shape(block, target, digests, edited)
        if block.mute and block.name in ours:
            block.mute = False
            ours.discard(block.name)
        elif block.mute:
            muted.append(block.name)
        frames, values = curves.support(corrections.weights[:, c].astype(np.float32))
        rewritten += curves.write_curve(key, block.name, start + frames, values, LINEAR, GROUP, digests, edited,
                                        force)
    store["muted"] = sorted(ours)
    return rewritten


def _new_correction_key(obj, name: str, co: np.ndarray):
    created: list = []
    block = writer.new_key(obj, name, co, created)
    block.slider_min, block.slider_max = -writer.SLIDER_LIMIT, writer.SLIDER_LIMIT
    key = obj.data.shape_keys
    listed = [str(n) for n in key.get(CORRECTION_KEYS, [])]
    key[CORRECTION_KEYS] = listed + [n for n in created if n not in listed]
    return block


# ---------------------------------------------------------------------------- removal

def remove_articulation(obj) -> int:
    """Remove the correction keys, their curves and the stored data; returns how many keys were removed."""
    key = _key(obj)
    if key is None:
        return 0
    names = [str(n) for n in key.get(CORRECTION_KEYS, [])]
    anim_data = key.animation_data
    action = anim_data.action if anim_data is not None else None
    if action is not None and action.get(writer.OWNED):
        for name in names:
            fcurve = compat.find_fcurve(anim_data, keyframes.value_path(name))
            if fcurve is not None:
                compat.remove_fcurve(action, fcurve)
    removed = writer.remove_key_blocks(obj, names)
    for prop in (EXACT, EXACT_BASIS, EXACT_BIAS, STORE, CORRECTION_KEYS):
        if prop in key:
            del key[prop]
    return removed


__all__ = ["EXACT", "STORE", "CORRECTION_KEYS", "ReapplyReport", "has_articulation", "stored_track", "set_track",
           "settings_of", "write_articulation", "reapply", "remove_articulation", "support", "closure_line",
           "track_to_text", "track_from_text"]
