"""The study's benchmark (issue 7): how close a trial runs to this machine's ceiling, and what the
sweeps and the pipeline cost around it.

``python -m bench.run`` (``make bench``) runs the items and writes
``bench/results/<date>-<machine>.json`` and ``.md``. Each item is a function in
:mod:`bench.items` that returns a dict; anything that needs a particular Keras
backend, thread setting or dtype policy runs in a fresh process
(:mod:`bench.probe`). Nothing here imports Keras at module level.
"""
