"""The study's steps as plain Python functions; CLI, KFP components and Katib trials wrap them."""

import os

# TensorFlow's C++ start-up chatter would bury the one-line metrics and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
