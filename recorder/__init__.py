"""Recorder: every answered call recorded, encrypted, shipped to storage and purged on time."""
