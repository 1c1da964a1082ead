"""Articulation: lip closures and the knobs on the head (issue 18), over the speech writer.

- :mod:`.phones` — where Animate's phone track comes from (detection beside DeepSpeech, a transcript, a file).
- :mod:`.writer`, :mod:`.curves` — the corrective keys ``voca_lips_close`` / ``voca_lips_tuck`` and their curves,
  re-applied from VOCA's exact weights stored with the animation; never over an artist's edit.
- :mod:`.checks` — what the knobs, Re-apply and Import alignment refuse, found before anything is written.
- :mod:`.properties`, :mod:`.operators`, :mod:`.panel` — the Articulation sub-panel.
"""
