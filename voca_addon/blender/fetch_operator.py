"""Preferences button "Download public model files": :func:`voca_addon.core.models.fetch.fetch` in Blender.

Honours Blender's "Allow Online Access" (Preferences › System › Network; ``bpy.app.online_access``):
while it is off the button is grey and says why, and nothing connects. The extension manifest declares
the ``network`` permission.

A :class:`.jobs.JobOperator` of app-wide scope (the add-on's one job runner: :mod:`.jobs`): ``invoke`` starts
the download in a worker thread that never touches ``bpy``, the modal timer shows its progress in the status
bar, Esc stops it at the next block (the partial ``.part`` file is kept and the next run resumes it); a second
download is refused while one runs, and so is one into a model folder another process is writing (a second
Blender, ``models fetch`` or ``install`` in a terminal: the folder is claimed, :mod:`voca_addon.core.claims`).
``execute`` (scripts, background mode) runs the same download
synchronously. Errors go the one way (:mod:`.reporting`): a user error (server unreachable, bad checksum: the
damaged part is deleted) as its message, a bug as one line + a log file. After every run, whatever its
outcome, the preferences' file checks run again, so the status lines show the new files.

Contract: main thread for everything but ``compute``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import bpy

from ..core.models import fetch
from . import jobs, preferences, reporting

FILES = fetch.PUBLIC_FILES             # what the button fetches (tests point it at a local server)
OFFLINE_REASON = ("Online access is off: allow it in Preferences › System › Network › Allow Online Access, "
                  "or run 'python -m voca_addon models fetch' in a terminal.")


class VOCA_OT_fetch_models(jobs.JobOperator, bpy.types.Operator):
    """Download the public model files (DeepSpeech v0.1.0 graph, FLAME template and texture) into the
    model folder ($VOCA_MODEL_DIR or ~/voca_models), resuming interrupted downloads and checking checksums"""

    bl_idname = "voca.fetch_models"
    bl_label = "Download public model files"

    SCOPE = jobs.APP
    BUSY = "The model files are downloading (Esc stops)."
    CANCELLED = "Download stopped; press the button again to resume it."

    @classmethod
    def disabled_reason(cls, context) -> Optional[str]:
        if not bpy.app.online_access:
            return OFFLINE_REASON
        return jobs.busy_reason()

    poll = classmethod(reporting.poll_by_reason)

    @classmethod
    def prepare(cls, context) -> Optional[str]:
        """The model folder (None: $VOCA_MODEL_DIR or ~/voca_models, resolved by the fetch)."""
        return None

    @staticmethod
    def compute(folder, progress) -> list:
        """The download, with the model folder claimed as ``models fetch`` / ``install`` claim it: another
        Blender or a terminal writing there at the same time is named and this run refused, never mixed."""
        from ..core import claims
        from ..core.models import modelfiles
        target = Path(os.path.abspath(os.path.expanduser(folder) if folder else modelfiles.model_dir()))
        modelfiles.make_folder(target.parent, target, "in the add-on's preferences or set VOCA_MODEL_DIR")
        with claims.holding(target):
            return fetch.fetch(folder, FILES, progress)

    @classmethod
    def apply(cls, _scene, _folder, lines: list) -> str:
        return "; ".join(lines)

    @classmethod
    def closed(cls, context) -> None:
        prefs = preferences.addon_preferences(context)
        if prefs is not None:
            for which in preferences.CHECKS:
                preferences.refresh(prefs, which)


CLASSES = (VOCA_OT_fetch_models,)
