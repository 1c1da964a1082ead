"""Living face: blinks, head motion and gaze (:mod:`.writer`), the FLAME rig (:mod:`voca_addon.blender.liveliness.rig`), Mark as blink (:mod:`.operators`)."""
