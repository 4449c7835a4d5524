"""Supervision: the supervisors' live wallboard and their listen, whisper and barge."""
