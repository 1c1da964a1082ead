"""Emotion: emotion shape keys and their curves (:mod:`.writer`) and the sub-panel's operators (:mod:`.operators`)."""
