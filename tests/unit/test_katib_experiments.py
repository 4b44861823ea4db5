"""The study's sweeps as Katib Experiments: generated manifests, trial commands."""

import pytest

from components.core.errors import UserError
from components.profile_check import load_profile
from components.sweeps import FILTER_SWEEP, SWEEPS
from katib.experiments import EXPERIMENTS_DIR, ExperimentOptions, build_experiment, cluster_experiments, to_yaml
from katib.validate import grid_size, validate_experiment


@pytest.mark.parametrize("gpu", [False, True])
def test_checked_in_manifests_are_what_the_code_generates(gpu):
    folder = EXPERIMENTS_DIR / "gpu" if gpu else EXPERIMENTS_DIR
    for name, experiment in cluster_experiments(load_profile("study"), gpu=gpu).items():
        path = folder / f"{name}.yaml"
        assert path.exists(), f"{path} is missing: run `make katib`"
        assert path.read_text() == to_yaml(experiment), f"{path} is stale: run `make katib`"


def test_generated_manifests_have_katibs_shape_and_pass_the_validator():
    for name, exp in cluster_experiments(load_profile("study")).items():
        assert validate_experiment(exp) == []
        spec = exp["spec"]
        assert exp["apiVersion"] == "kubeflow.org/v1beta1" and exp["kind"] == "Experiment"
        assert spec["objective"] == {"type": "maximize", "objectiveMetricName": "val_accuracy",
                                     "additionalMetricNames": ["accuracy", "loss", "val_loss"],
                                     "metricStrategies": [{"name": "val_accuracy", "value": "max"},
                                                          {"name": "accuracy", "value": "max"},
                                                          {"name": "loss", "value": "min"},
                                                          {"name": "val_loss", "value": "min"}]}
        assert spec["algorithm"]["algorithmName"] == "grid"
        assert spec["maxTrialCount"] == grid_size(exp) == SWEEPS[name].grid_size
        assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
        template = spec["trialTemplate"]
        job = template["trialSpec"]
        assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
        pod = job["spec"]["template"]
        assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
        assert pod["spec"]["restartPolicy"] == "Never"
        (container,) = pod["spec"]["containers"]
        assert container["name"] == template["primaryContainerName"]
        assert container["resources"]["requests"] == {"cpu": "2", "memory": "6Gi"}
        assert container["command"][:2] == ["study", "train"]


def test_gpu_variant_asks_for_a_gpu_and_tolerates_the_gpu_taint():
    exp = cluster_experiments(load_profile("study"), gpu=True)["optimizer"]
    pod = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "trainer-gpu" in pod["containers"][0]["image"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_fixed_settings_and_placeholders_reach_the_trial_command():
    opts = ExperimentOptions(data_uri="/d", output_root="/o", fixed={"optimizer": "Nadam",
                             "activations": "selu,relu,relu,relu", "filters": "32,32,64,64"},
                             epochs=3, parallel_trials=2, early_stopping=True)
    exp = build_experiment(FILTER_SWEEP, opts)
    command = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"]
    args = dict(zip(command[2::2], command[3::2]))
    assert args["--optimizer"] == "Nadam" and args["--activations"] == "selu,relu,relu,relu"
    assert args["--filters"] == ",".join(f"${{trialParameters.filters{i}}}" for i in range(1, 5))
    assert args["--output"] == "/o/${trialParameters.trialName}" and args["--epochs"] == "3"
    assert exp["spec"]["earlyStopping"]["algorithmName"] == "medianstop"
    assert args["--bn-momentum"] == "0.99"  # Keras' and the study's, unless the profile says otherwise
    assert validate_experiment(exp) == []


def test_the_profiles_batch_norm_momentum_reaches_the_trials():
    from components.profile_check import load_profile

    opts = ExperimentOptions.from_profile(load_profile("smoke")["sweeps"], data_uri="/d", output_root="/o")
    command = build_experiment(FILTER_SWEEP, opts)["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"][
        "spec"]["containers"][0]["command"]
    assert dict(zip(command[2::2], command[3::2]))["--bn-momentum"] == "0.9"


def _trial_args(profile: str) -> dict[str, str]:
    opts = ExperimentOptions.from_profile(load_profile(profile)["sweeps"], data_uri="/d", output_root="/o")
    command = build_experiment(FILTER_SWEEP, opts)["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"][
        "spec"]["containers"][0]["command"]
    return dict(zip(command[2::2], command[3::2]))


def test_the_profiles_training_images_reach_the_trials_and_all_of_them_add_no_flag():
    assert load_profile("smoke")["sweeps"]["train_images"] == 2700
    assert _trial_args("smoke")["--train-images"] == "2700"
    assert load_profile("study")["sweeps"]["train_images"] is None
    assert "--train-images" not in _trial_args("study")  # the study's trials: every image


def test_a_fourth_sweep_is_an_experiment_by_its_definition_alone():
    from tests.fixtures.trials.fourth_sweep import fourth_sweep

    with fourth_sweep() as sweep:
        experiments = cluster_experiments(load_profile("study"))
        assert list(experiments) == ["optimizer", "activations", "filters", "batch_size"]
        exp = experiments["batch_size"]
        assert validate_experiment(exp) == [] and exp["metadata"]["name"] == "fmstudy-batch-size"
        assert exp["spec"]["maxTrialCount"] == grid_size(exp) == sweep.grid_size == 2
        command = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"]
        args = dict(zip(command[2::2], command[3::2]))
        # Its parameter replaces the profile's batch size; the study's three winners are held fixed.
        assert args["--batch-size"] == "${trialParameters.batch_size}"
        assert command.count("--batch-size") == 1
        assert (args["--optimizer"], args["--activations"], args["--filters"]) == (
            "Nadam", "selu,relu,relu,relu", "32,64,64,64")
        assert args["--epochs"] == "10" and args["--bn-momentum"] == "0.99"


def test_sweep_settings_from_a_kfp_struct_are_typed_once():
    """A KFP dict parameter hands every number back as a float; the one converter makes counts ints again
    and refuses a key the sweeps section does not have."""
    from katib.experiments import ExperimentOptions

    sweeps = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
              for k, v in load_profile("smoke")["sweeps"].items() if v is not None}
    opts = ExperimentOptions.from_profile(sweeps, data_uri="/d", output_root="/o", max_trials=5.0, parallel_trials=2.0)
    assert (opts.epochs, opts.batch_size, opts.max_trials, opts.parallel_trials) == (1, 128, 5, 2)
    assert sweeps["train_images"] == 2700.0 and opts.train_images == 2700
    assert all(type(v) is int for v in (opts.epochs, opts.max_trials, opts.parallel_trials, opts.max_failed_trials,
                                        opts.train_images, opts.pbt_population, opts.hyperband_eta))
    assert sweeps["pbt_population"] == 8.0 and opts.algorithm == "grid"
    with pytest.raises(UserError, match=r"^sweeps\.epoch: unknown setting"):
        ExperimentOptions.from_profile({**sweeps, "epoch": 3}, data_uri="/d", output_root="/o")
    with pytest.raises(UserError, match=r"^sweeps\.epochs=1\.5: expected a positive integer$"):
        ExperimentOptions.from_profile({**sweeps, "epochs": 1.5}, data_uri="/d", output_root="/o")


def _primary(exp: dict) -> dict:
    pod = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == exp["spec"]["trialTemplate"]["primaryContainerName"])


def test_pbt_trials_warm_start_from_the_folder_katibs_webhook_mounts():
    exp = build_experiment(SWEEPS["activations"], ExperimentOptions(data_uri="/d", output_root="/o", algorithm="pbt",
                                                                     pbt_population=6))
    assert validate_experiment(exp) == []
    spec = exp["spec"]
    settings = {s["name"]: s["value"] for s in spec["algorithm"]["algorithmSettings"]}
    assert spec["algorithm"]["algorithmName"] == "pbt"
    assert settings == {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "6",
                        "truncation_threshold": "0.4"}
    # Katib's webhook mounts the Suggestion's volume (subPath <experiment>/<trial>) at suggestion_trial_dir in
    # the primary container (inject_webhook.go, mutateSuggestionVolume); the trial reads and writes there.
    command = _primary(exp)["command"]
    assert command[command.index("--warm-start") + 1] == settings["suggestion_trial_dir"]
    # The Suggestion's volume exists only with resumePolicy FromVolume (suggestion_controller.go).
    assert spec["resumePolicy"] == "FromVolume"
    assert spec["maxTrialCount"] == SWEEPS["activations"].grid_size  # the grid's budget of trials
    # Katib's pbt service makes the trial's folder as its own (root) user; the trial runs as the image's.
    pod = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    grid = build_experiment(SWEEPS["activations"], ExperimentOptions(data_uri="/d", output_root="/o"))
    assert "fsGroup" not in grid["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["securityContext"]


def test_hyperband_takes_the_trials_epochs_as_its_resource():
    opts = ExperimentOptions(data_uri="/d", output_root="/o", algorithm="hyperband", epochs=9, parallel_trials=9)
    exp = build_experiment(SWEEPS["filters"], opts)
    assert validate_experiment(exp) == []
    spec = exp["spec"]
    settings = {s["name"]: s["value"] for s in spec["algorithm"]["algorithmSettings"]}
    assert settings == {"resource_name": "epochs", "r_l": "9", "eta": "3"}
    epochs = next(p for p in spec["parameters"] if p["name"] == "epochs")
    assert epochs == {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}}
    assert {"name": "epochs", "reference": "epochs"}.items() <= next(
        t for t in spec["trialTemplate"]["trialParameters"] if t["name"] == "epochs").items()
    command = _primary(exp)["command"]
    assert command.count("--epochs") == 1 and command[command.index("--epochs") + 1] == "${trialParameters.epochs}"
    assert "--warm-start" not in command and "resumePolicy" not in spec


def test_hyperband_with_fewer_trials_at_once_than_its_first_rung_is_refused_in_one_line():
    # Katib's hyperband ValidateAlgorithmSettings: parallelTrialCount >= ceil(eta ** s_max); 10 epochs, eta 3: 9.
    with pytest.raises(UserError) as refused:
        build_experiment(SWEEPS["filters"], ExperimentOptions(data_uri="/d", output_root="/o", algorithm="hyperband",
                                                              parallel_trials=3))
    message = str(refused.value)
    assert "starts 9 trials at once" in message and "sweeps.parallel_trials" in message and "\n" not in message


def test_the_profiles_algorithm_reaches_the_experiment_and_a_wrong_one_is_named():
    profile = load_profile("smoke")
    opts = ExperimentOptions.from_profile({**profile["sweeps"], "algorithm": "PBT", "pbt_population": 5},
                                          data_uri="/d", output_root="/o")
    assert (opts.algorithm, opts.pbt_population) == ("pbt", 5)
    with pytest.raises(UserError, match="sweeps.algorithm.*expected one of grid, hyperband, pbt"):
        ExperimentOptions.from_profile({**profile["sweeps"], "algorithm": "bayes"}, data_uri="/d", output_root="/o")
    with pytest.raises(UserError, match="pbt_population.*5 or more"):
        ExperimentOptions.from_profile({**profile["sweeps"], "pbt_population": 4}, data_uri="/d", output_root="/o")
