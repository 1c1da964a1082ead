"""The living face beside speech: blinks (:mod:`.blink`), head motion from prosody (:mod:`.head_motion`,
:mod:`.prosody`), gaze (:mod:`.gaze`), and their settings and planning (:mod:`.liveliness`).

numpy only; deterministic for a seed.
"""
