"""Stage 2, speech: audio files → samples (decode, resample) → MFCC → DeepSpeech 0.1.0 character logits,
the per-frame speech features VOCA reads.

numpy (and the stdlib) only; never ``bpy`` or ``tensorflow``.
"""
