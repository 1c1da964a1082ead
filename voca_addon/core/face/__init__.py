"""The face network: VOCA (:mod:`.voca`) — DeepSpeech windows + a speaking style → FLAME vertex offsets, as
50 linear keys + a bias per frame (the decoder is linear: exact shape keys).

numpy only; never ``bpy`` or ``tensorflow``. Reads no file: :mod:`..models` builds it from the checkpoint.
"""
