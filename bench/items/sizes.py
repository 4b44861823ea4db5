"""The items' sizes: :data:`FULL_SIZES` for results, :data:`QUICK_SIZES` to check the harness.

``python -m bench.run --set NAME=VALUE`` overrides one of them; the names are the keys here.
"""

from __future__ import annotations

FULL_SIZES: dict = {
    # Items 1-4: the artifact the probes train on (None: all of Fashion-MNIST) and the measurement.
    "data_train_size": None, "data_test_size": None,
    "train_images": 10240, "epochs": 4, "batch_size": 128,  # 1 warm-up epoch + 3 measured (median)
    "gemm_n": 4096, "gemm_repeats": 5,
    "variants": "baseline,threads,xla,spe8,threads+spe8,batch256",
    "backends": "tensorflow,jax,torch",
    "pipeline_repeats": 20,
    # Item 2: fp32 vs mixed_bfloat16, the same epochs on the same data and seed.
    "acc_train_size": None, "acc_test_size": None, "acc_epochs": 3,
    # Item 5: the reduced setting of the activation sweep, replayed strategies.
    "search_train_size": 6000, "search_test_size": 1000, "search_epochs": 3, "search_values": "elu,relu,selu",
    "search_layers": 4, "search_optimizer": "Nadam", "search_parallel": 1, "search_seeds": 20,
    "search_samplers": "random,tpe", "medianstop_min_trials": 3, "medianstop_start_steps": "1,2",
    "search_threshold_pp": 0.2,
    # Item 5's hyperband replays, as eta:parallelTrialCount (Katib's first rung is as wide as the free slots).
    "search_hyperband": "2:8,3:9,3:27",
    # Item 6: trials through the local backend, and imports per backend.
    "overhead_trials": 3, "overhead_train_size": 6000, "overhead_test_size": 1000, "overhead_epochs": 3,
    "import_repeats": 3,
    # Item 7: the smoke pipeline through kfp.local (overrides as `study run --set`).
    "pipeline_profile": "smoke", "pipeline_set": [],
    # Item 9: `make run`'s smoke pipeline as it is (overrides only for the harness check).
    "smoke_set": [],
    # Item 10: PBT run for real on item 5's recorded grid (its data, optimizer, batch and seed; null
    # train images: the recorded run's), each trial pbt_epochs on from its parent's weights.
    "pbt_recorded": "bench/results/2026-11-25-amd-epyc-2c.json", "pbt_train_images": None,
    "pbt_population": 6, "pbt_max_trials": 48, "pbt_epochs": 1, "pbt_parallel": 2, "pbt_seeds": 2,
    "probe_timeout_s": 3600,
}
QUICK_SIZES: dict = {
    **FULL_SIZES,
    "data_train_size": 1000, "data_test_size": 300,
    "train_images": 384, "epochs": 3, "gemm_n": 512, "gemm_repeats": 3,
    "variants": "baseline,threads", "pipeline_repeats": 3,
    "acc_train_size": 1000, "acc_test_size": 300, "acc_epochs": 2,
    "search_train_size": 500, "search_test_size": 200, "search_epochs": 2, "search_values": "relu,selu",
    "search_layers": 2, "search_seeds": 5, "medianstop_min_trials": 1, "medianstop_start_steps": "1",
    "overhead_trials": 1, "overhead_train_size": 500, "overhead_test_size": 200, "overhead_epochs": 2,
    "import_repeats": 1,
    "pipeline_set": ["data.train_size=600", "data.test_size=200", "train.epochs=1",
                     "sweeps.max_trials={optimizer: 1, activations: 1, filters: 1}"],
    "smoke_set": ["data.train_size=600", "data.test_size=200", "train.epochs=1",
                  "sweeps.max_trials={optimizer: 8, activations: 3, filters: 3}"],
    "pbt_train_images": 500, "pbt_population": 5, "pbt_max_trials": 7, "pbt_seeds": 1,
    "probe_timeout_s": 900,
}
