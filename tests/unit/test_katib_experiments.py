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
                                        opts.train_images))
    with pytest.raises(UserError, match=r"^sweeps\.epoch: unknown setting"):
        ExperimentOptions.from_profile({**sweeps, "epoch": 3}, data_uri="/d", output_root="/o")
    with pytest.raises(UserError, match=r"^sweeps\.epochs=1\.5: expected a positive integer$"):
        ExperimentOptions.from_profile({**sweeps, "epochs": 1.5}, data_uri="/d", output_root="/o")
