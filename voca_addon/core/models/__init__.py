"""Stage 1, model files: read the official VOCA checkpoint (TF tensor bundle) and DeepSpeech's frozen
graph without TensorFlow, cache them as memory-mapped arrays, read VOCA condition names and FLAME pickles.

Imports numpy and the stdlib only (and the network definitions of :mod:`..speech` and :mod:`..face` that
the files are turned into); never ``bpy`` or ``tensorflow``.
"""
