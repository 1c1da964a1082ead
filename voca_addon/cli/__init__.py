"""The command line: ``python -m voca_addon COMMAND …`` (and ``blender -b -P voca_addon/headless.py -- COMMAND …``).

One parser (:mod:`.main`), one module per command, each with ``add_parser(sub)`` (stdlib only at import, so
``--help`` is instant) and ``run(args)`` (imports numpy, the core and, for the Blender commands, ``bpy``):

=====================  ===========================================================================
``features``           :mod:`.features` — audio → DeepSpeech logits and VOCA windows (.npz)
``infer``              :mod:`.infer` — audio or features → VOCA's animation (.npz), lips that close
``animate``            :mod:`.animate` — audio → a FLAME head animated in a .blend (+ video, .npz)
``import-sequence``    :mod:`.sequences` — a mesh sequence → shape keys in a .blend
``export-pc2/-obj``    :mod:`.sequences` — a .blend's animated head → PC2 / OBJ frames
``retarget``           :mod:`.retarget` — VOCA's motion onto any head mesh → .blend
``batch``              :mod:`.batch.command` — many clips per run (local workers or Dask)
``phonemes``           :mod:`.phonemes` — audio (+ transcript) → a phone track
``models``             :mod:`.models` — fetch / install / status of the model files
``train``              :mod:`.train` — train VOCA (TensorFlow 2, repository checkout only)
``bench``              :mod:`.bench` — speed and memory against TensorFlow (repository checkout only)
=====================  ===========================================================================

Shared pieces: :mod:`.common` (argument rules, the error guard ``run_guarded`` and exit statuses, progress)
and :mod:`.articulation` (``--transcript``, ``--alignment``, ``--no-closures``, ``--phonemes`` and the phone
pass beside DeepSpeech). A command module imports :mod:`.common`, :mod:`.articulation`, the core and
``voca_addon.blender``; never :mod:`.main` nor another command (checked by ``tests/core/test_imports.py``).
"""
