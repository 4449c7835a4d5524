"""Operators: skills, states (ready, ringing, talking, wrap-up, paused) and their softphones."""
