"""Living face: blinks, head motion and gaze (:mod:`.writer`), the FLAME rig (:mod:`.rig`), Mark as blink (:mod:`.operators`)."""
