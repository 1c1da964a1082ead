"""Character: VOCA's motion on any head mesh (fit, transfer, drive its own keys).

- :mod:`.data` — Blender data ↔ the core's Character stage (mesh arrays, landmark empties, the stored fit).
- :mod:`.landmarks` — the 68 landmark empties a guess places.
- :mod:`.source` — a FLAME head animated by Animate, read back as the animation it plays.
- :mod:`.writer` — the target mesh, its own keys, the solved weights' curves.
- :mod:`.operators`, :mod:`.panel` — the Character sub-panel (jobs on :mod:`voca_addon.blender.jobs`).
"""
