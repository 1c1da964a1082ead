"""Speech: Animate from audio — the settings, the one UI-free pipeline, the operator, the main panel, the writer.

- :mod:`.properties` — ``scene.voca`` (saved with the .blend) → :class:`.pipeline.AnimateSettings`.
- :mod:`.pipeline` — audio → :class:`~voca_addon.core.animation.shapekeys.ShapeKeyAnimation` on a head,
  shared by the operator and the headless ``animate`` command.
- :mod:`.operators` — Animate from audio (a job on :mod:`voca_addon.blender.jobs`), Add FLAME head, Remove.
- :mod:`.panel` — the VOCA tab of the sidebar (main panel).
- :mod:`.writer` — the one place a shape-key animation becomes Blender data (keys, curves, sound strip).
- :mod:`.heads`, :mod:`.material` — which FLAME head a run animates, and its look.
"""
