"""The VOCA engine: audio, DeepSpeech 0.1.0 features, the VOCA network, model files, animation data.

Contract: modules in this package import only the standard library, numpy and (where noted) scipy.
They never import ``bpy`` or ``tensorflow``; ``tests/core/test_isolation.py`` proves it.
"""
