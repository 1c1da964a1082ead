"""The character of ``batch --target MESH --landmarks PAIRS [--target-keys FOLDER]``: every clip on one head.

Once per batch, before any clip is computed (:func:`prepare`, in the batch's own process): the target, its
landmark pairs and its key folder are read and checked and FLAME is fitted to it
(:func:`voca_addon.core.character.retarget.load_character`, as the ``retarget`` command does), the transfer map T
is built (:func:`~voca_addon.core.character.transfer.transfer_matrix`) and VOCA's 51 fields (50 basis
rows + bias, the same for every clip: VOCA's decoder) are transferred. A bad input refuses the whole
batch with one message before any clip runs.

Per clip (:func:`on_character`, in whichever process runs the clip): the character's animation is those
transferred fields with the clip's own weights (an emotion shape, if the clip has one, is transferred
too: one more field); with ``--target-keys`` the rig's key weights are solved for it
(:func:`~voca_addon.core.character.retarget.retarget_motion`'s solver, :mod:`~voca_addon.core.character.keysolve`).

Contract: numpy + scipy + :mod:`voca_addon.core` (no bpy); :class:`BatchCharacter` is picklable (it
travels to ``--workers`` processes and Dask workers).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...core.animation.shapekeys import ShapeKeyAnimation
from ...core.errors import InputError

KEY_WEIGHTS, KEY_NAMES = "key_weights", "key_names"   # extra .npz members with --target-keys


@dataclass(frozen=True)
class BatchCharacter:
    """A fitted character and VOCA's fields on it (see the module docstring)."""

    name: str                   # the object's name (the target file's stem)
    character: object           # core.character.retarget.Character: target mesh, fit, keys (KeySet or None)
    matrix: object              # scipy CSR T [V_target, 5023]
    source_basis: np.ndarray    # float32 [D, 5023, 3]: VOCA's basis these fields were transferred from
    source_bias: np.ndarray     # float32 [5023, 3]
    basis: np.ndarray           # float32 [D, V_target, 3]: on the character (its units and frame)
    bias: np.ndarray            # float32 [V_target, 3]

    @property
    def keys(self):
        return self.character.keys


def check_flags(args) -> None:
    """The flag combinations (InputError): --landmarks and --target go together; --target-keys needs them."""
    target, pairs, keys = (getattr(args, k, None) for k in ("target", "landmarks", "target_keys"))
    if target is None and (pairs or keys):
        raise InputError(f"{'--landmarks' if pairs else '--target-keys'} needs --target MESH (the character "
                         "every clip goes onto)")
    if target is not None and not pairs:
        raise InputError("--target needs --landmarks PAIRS: lines 'flame_vertex target_vertex' that place "
                         "FLAME on the character (at least 4; the 68 iBUG points are best)")
    from ...core.character.retarget import is_auto
    for path, flag in ((target, "--target"), (pairs, "--landmarks"), (keys, "--target-keys")):
        if path is not None and not (flag == "--landmarks" and is_auto(path)) and not os.path.exists(path):
            raise InputError(f"{flag} '{path}' was not found. Check the path.")


def prepare(args, template_path, voca_model) -> Optional[BatchCharacter]:
    """Fit the character of ``args`` once and transfer VOCA's fields (None without ``--target``)."""
    if getattr(args, "target", None) is None:
        return None
    from ...core.character import transfer
    from ...core.character.retarget import load_character
    character = load_character(args.target, args.landmarks, args.target_keys, template_path)
    target = character.target
    matrix = transfer.transfer_matrix(character.fit, target.vertices, target.faces)
    dims = voca_model.dims
    basis = np.asarray(voca_model.decoder_weights, np.float32).reshape(dims.code_dim, dims.num_vertices, 3)
    bias = np.asarray(voca_model.decoder_bias, np.float32).reshape(dims.num_vertices, 3)
    moved = transfer.transfer_fields(np.concatenate([bias[None], basis]), character.fit, matrix)
    name = os.path.splitext(os.path.basename(args.target))[0] or "Character"
    return BatchCharacter(name, character, matrix, basis, bias, np.ascontiguousarray(moved[1:]),
                          np.ascontiguousarray(moved[0]))


def on_character(ch: BatchCharacter, anim: ShapeKeyAnimation) -> ShapeKeyAnimation:
    """``anim`` (on FLAME) on the character: VOCA's fields transferred once, any extra shape per clip; the
    clip's corrections (lip closures), if any, transferred too and kept apart."""
    from ...core.character import transfer
    d = len(ch.basis)
    same = (anim.basis.shape[0] >= d and np.array_equal(anim.basis[:d], ch.source_basis)
            and np.array_equal(anim.bias, ch.source_bias))
    if not same:                                          # another model or template: transfer it all
        fit, target = ch.character.fit, ch.character.target
        return transfer.transfer(anim, fit, target.vertices, target.faces, matrix=ch.matrix)
    basis = ch.basis
    if anim.basis.shape[0] > d:                           # the clip's emotion shape
        extra = transfer.transfer_fields(anim.basis[d:], ch.character.fit, ch.matrix)
        basis = np.concatenate([basis, extra])
    corrections = None if anim.corrections is None else \
        transfer.transfer_corrections(anim.corrections, ch.character.fit, ch.matrix)
    return ShapeKeyAnimation(basis, ch.bias, anim.weights, anim.fps,
                             np.asarray(ch.character.target.vertices, np.float32), anim.names, corrections)


def solve_keys(ch: BatchCharacter, motion: ShapeKeyAnimation):
    """The rig's own key weights for ``motion`` (a :class:`KeySolution`), or None without ``--target-keys``."""
    if ch.keys is None:
        return None
    from ...core.character import keysolve
    return keysolve.solve_keys(motion, ch.keys.deltas, ch.keys.names)


def add_key_weights(npz_path: str, solution) -> None:
    """Append ``key_weights`` [F, J] and ``key_names`` [J] to a written ``.npz`` (a zip of ``.npy`` files)."""
    with zipfile.ZipFile(npz_path, "a") as z:
        for member, value in ((KEY_WEIGHTS, np.asarray(solution.weights, np.float32)),
                              (KEY_NAMES, np.array(solution.names))):
            with z.open(member + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, value, allow_pickle=False)


def report(ch: BatchCharacter) -> str:
    """One line: how well the fit went (the ``retarget`` command's figures)."""
    r = ch.character.fit.residuals
    keys = f", {len(ch.keys.names)} own keys" if ch.keys is not None else ""
    if getattr(ch.character, "guess", None) is not None:
        keys += ("; landmarks: an AUTOMATIC FIRST GUESS, checked by no one (retarget --landmarks auto "
                 "--guess-landmarks FILE writes them to check and edit)")
    return (f"character '{ch.name}' ({len(ch.character.target.vertices)} vertices{keys}): fit scale "
            f"{r['scale']:.4g} ({r['unit']}), landmarks {r['landmarks_registered']['mean']:.2f} mm after "
            f"registration, surface {r['surface']['mean']:.2f} mm mean")
