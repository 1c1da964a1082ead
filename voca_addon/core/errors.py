"""Exceptions a user can cause. Each message says what is wrong and what to do.

Contract: stdlib only. ``assert`` is reserved for programmer errors; anything a user can trigger with
a file, a path or an option raises one of these, and the CLI / Blender operators print the message
without a traceback.
"""


class VocaError(Exception):
    """Base class of every user-facing error of the add-on."""


class ModelFileError(VocaError):
    """A model file (VOCA checkpoint, DeepSpeech graph, FLAME asset) is missing, truncated or wrong."""


class AudioError(VocaError):
    """An audio file cannot be read or holds no usable speech."""


class MeshError(VocaError):
    """A mesh / template file cannot be read or has the wrong topology."""


class InputError(VocaError):
    """An option or argument is out of range or inconsistent."""


def missing_file(what: str, path, hint: str = "") -> InputError:
    """The error for a ``path`` that should be a file and is not: a folder, a link to nothing (or a loop
    of links), or nothing at all — each said as it is (a folder is never "not found")."""
    import os
    if os.path.isdir(path):
        return InputError(f"{what} '{path}' is a folder, not a file. Give the file inside it{hint}.")
    if os.path.islink(path):
        return InputError(f"{what} '{path}' is a link to nothing (or a loop of links). Give the file itself{hint}.")
    return InputError(f"{what} '{path}' was not found. Check the path{hint}.")
