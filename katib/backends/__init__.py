"""Where a sweep's trials run: ``local`` (the local Katib backend) or ``cluster`` (the Katib controller)."""
