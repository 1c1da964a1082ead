"""Errors a user of the training command can cause (each message says what to do).

Contract: stdlib + :mod:`voca_addon.core.errors` only. Both are :class:`~voca_addon.core.errors.InputError`
(so :class:`~voca_addon.core.errors.VocaError`): the CLI prints ``error: <message>`` and exits 2.
"""
from voca_addon.core.errors import InputError


class ConfigError(InputError):
    """The training config file is missing, malformed, or holds an unusable value."""


class DataError(InputError):
    """The training data folder is incomplete or inconsistent (files, frames, templates, splits)."""
