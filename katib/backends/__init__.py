"""Where a sweep's trials run, each a :class:`base.SweepBackend`: ``local_backend`` (the local Katib
backend in ``local/``, on this machine) or ``cluster`` (the Katib controller, on a cluster)."""
