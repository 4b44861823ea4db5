"""The early stopping services' ValidateEarlyStoppingSettings (pkg/earlystopping/v1beta1/ at v0.19.0)."""
