"""The user's model files: the VOCA checkpoint and DeepSpeech's frozen graph found, checked and turned into
the networks of :mod:`..speech` and :mod:`..face` (:mod:`.modelfiles`, cached as memory-mapped arrays), the
speaking styles' names (:mod:`.conditions`), the public files fetched (:mod:`.fetch`) and their status
(:mod:`.status`). The file formats themselves are :mod:`..formats`.

Imports numpy and the stdlib only; never ``bpy`` or ``tensorflow``.
"""
