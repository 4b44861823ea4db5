"""The bottom layer: errors, storage, settings, profiles, typed config and the resumable-training loop.

Nothing here imports the rest of the project, so every step, the local Katib backend and every
trial can stand on it.
"""
