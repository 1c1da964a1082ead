"""Training VOCA with TensorFlow 2 on VOCA-format data; checkpoints the add-on runs unchanged.

Not part of the Blender extension (the build never packs this folder, Blender never imports it).
Entry point: ``python -m voca_addon train`` (see ``docs/training.md``), or :func:`voca_training.train.train`.

Modules: :mod:`.config` (INI with VOCA's defaults), :mod:`.data` (VOCA-format folders, checks, splits,
RAVDESS names), :mod:`.batches` (cached speech features, windows, initial basis), :mod:`.model` (the
network in TF 2), :mod:`.checkpoint` (tensor bundles in the release's names), :mod:`.train` (the run),
:mod:`.progress` (bar and log).

Contract: only :mod:`.model` imports TensorFlow, and :mod:`.train` imports it only after every input check.
"""
