"""Katib's admission webhook: pkg/webhook/v1beta1/experiment/validator/validator.go (v0.19.0).

Katib's one validator file is split here by what it checks: the Experiment's
name, counts, objective and algorithm (experiment.py), its parameters
(parameters.py), the trial template (trial_template.py, with the batch/v1 Job
conversion in trial_job.py) and the metrics collector (metrics_collector.py).
"""
