"""The study's hand-written CNN: its hyperparameters, the Keras model and the trial runner.

A ``study train`` process (every Katib trial) imports this package and ``components.core`` only.
"""
