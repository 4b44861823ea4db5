"""The NAS step's settings, roles, tables and cluster manifests: no Keras, no training."""

import argparse
import csv
import io
from pathlib import Path

import pytest
import yaml

from components.core.errors import UserError
from components.core.settings import K8S_NAMESPACE, K8S_TRIAL_SERVICE_ACCOUNT, TRAINER_IMAGE
from components.nas import (
    BLOCK_TYPES,
    ENV_ORACLE_IP,
    ENV_ORACLE_PORT,
    ENV_TUNER_ID,
    TUNERS,
    NasConfig,
    Role,
    add_arguments,
    config_from_args,
    model_summary_text,
    search_role,
    trials_csv,
)
from tests.conftest import REPO

K8S_NAS = REPO / "k8s" / "components" / "nas"


# ----------------------------------------------------------------------- settings

def test_settings_are_normalised():
    config = NasConfig(block_type=" ResNet ", tuner="Bayesian").normalized()
    assert (config.block_type, config.tuner) == ("resnet", "bayesian")
    assert config.pretrained is False, "no step may download weights unless asked"


@pytest.mark.parametrize("changes, message", [
    ({"block_type": "densenet"}, "block type 'densenet': expected one of resnet, xception, vanilla, efficient"),
    ({"tuner": "grid"}, "tuner 'grid': expected one of greedy, bayesian, hyperband, random"),
    ({"max_trials": 0}, "max_trials=0: expected a positive integer"),
    ({"epochs": -1}, "epochs=-1: expected a positive integer"),
    ({"batch_size": 2.5}, "batch_size=2.5: expected a positive integer"),
    ({"train_images": 0}, "train_images=0: expected a positive number"),
    ({"val_split": 1.0}, "val_split=1.0: expected a number between 0 and 1"),
    ({"block_type": "vanilla", "pretrained": True}, "the vanilla block has no pretrained weights"),
])
def test_bad_settings_are_one_clear_line(changes, message):
    with pytest.raises(UserError, match=message) as err:
        NasConfig(**changes).normalized()
    assert "\n" not in str(err.value)


def test_profile_style_dicts_reject_unknown_keys():
    assert NasConfig.from_dict({"block_type": "vanilla", "max_trials": 2}).max_trials == 2
    from_kfp = NasConfig.from_dict({"max_trials": 2.0, "epochs": 1.0, "val_split": 0.2}).normalized()
    assert (from_kfp.max_trials, from_kfp.epochs, from_kfp.val_split) == (2, 1, 0.2)
    with pytest.raises(UserError, match="max_trials=2.5"):
        NasConfig.from_dict({"max_trials": 2.5}).normalized()
    with pytest.raises(UserError, match="^trials: unknown setting; expected one of augment, batch_size, "):
        NasConfig.from_dict({"trials": 2})


@pytest.mark.parametrize("profile", ["smoke", "seed"])
def test_profiles_nas_section_is_valid(profile):
    from components.core.profiles import load_profile

    settings = load_profile(profile)
    if "nas" not in settings:
        pytest.skip("profiles.yaml has no nas section yet")
    config = NasConfig.from_dict(settings["nas"]).normalized()
    assert config.pretrained is False
    if profile == "seed":  # the study's settings
        assert (config.block_type, config.normalize, config.augment) == ("resnet", True, False)
    else:  # a tiny search
        assert (config.block_type, config.max_trials, config.epochs) == ("vanilla", 2, 1)


def test_command_line_flags_build_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "d", "--output", "o", "--block-type", "xception", "--normalize", "false",
                              "--augment", "yes", "--tuner", "random", "--max-trials", "5", "--train-images", "all",
                              "--val-split", "0.2"])
    config = config_from_args(args)
    assert (config.block_type, config.normalize, config.augment, config.tuner) == ("xception", False, True, "random")
    assert (config.max_trials, config.train_images, config.val_split) == (5, None, 0.2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--normalize", "maybe"])


# -------------------------------------------------------------------------- roles

def test_role_comes_from_kerastuners_variables():
    assert search_role({}) == Role("single", "tuner0")
    base = {ENV_ORACLE_IP: "127.0.0.1", ENV_ORACLE_PORT: "8000"}
    assert search_role({**base, ENV_TUNER_ID: "chief"}) == Role("chief", "chief", "127.0.0.1:8000")
    worker = search_role({**base, ENV_TUNER_ID: "tuner1"})
    assert (worker.kind, worker.tuner_id, worker.exports) == ("worker", "tuner1", False)


@pytest.mark.parametrize("env, message", [
    ({ENV_ORACLE_IP: "10.0.0.1", ENV_TUNER_ID: "chief"}, "KERASTUNER_ORACLE_PORT=: expected the chief oracle's port"),
    ({ENV_ORACLE_IP: "10.0.0.1", ENV_ORACLE_PORT: "http", ENV_TUNER_ID: "chief"}, "KERASTUNER_ORACLE_PORT=http"),
    ({ENV_ORACLE_IP: "10.0.0.1", ENV_ORACLE_PORT: "8000"}, "KERASTUNER_TUNER_ID is not set"),
])
def test_incomplete_distributed_settings_are_user_errors(env, message):
    with pytest.raises(UserError, match=message):
        search_role(env)


# ------------------------------------------------------------------------- tables

def test_trial_table_has_a_row_per_trial_and_a_column_per_hyperparameter():
    records = [
        {"trial_id": "0", "status": "COMPLETED", "val_accuracy": 0.91234, "best_epoch": 3, "tuner_id": "tuner0",
         "seconds": 12.34, "hyperparameters": {"optimizer": "adam", "block/version": "resnet50"}},
        {"trial_id": "1", "status": "FAILED", "val_accuracy": None, "best_epoch": None, "tuner_id": None,
         "seconds": None, "hyperparameters": {"optimizer": "sgd"}},
    ]
    rows = list(csv.DictReader(io.StringIO(trials_csv(records))))
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert (rows[0]["val_accuracy"], rows[0]["worker"], rows[0]["block/version"]) == ("0.9123", "tuner0", "resnet50")
    assert rows[1]["val_accuracy"] == "" and rows[1]["block/version"] == ""


def test_model_summary_lists_layers_and_the_three_counts():
    text = model_summary_text({"name": "m", "params": {"total": 13, "trainable": 10, "non_trainable": 3},
                               "layers": [{"name": "norm", "type": "Normalization", "output_shape": "(None, 28)",
                                           "params": 3},
                                          {"name": "dense", "type": "Dense", "output_shape": "(None, 10)",
                                           "params": 10}]})
    assert "norm (Normalization)" in text and "dense (Dense)" in text
    assert text.strip().splitlines()[-3:] == ["total params: 13", "trainable params: 10",
                                              "non-trainable params: 3"]


# ----------------------------------------------------------------- k8s manifests

def _manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S_NAS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return docs


def test_manifests_are_a_chief_service_and_job_and_an_indexed_worker_job():
    docs = _manifests()
    kustomization = docs["Component/kustomization"]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S_NAS.glob("*.yaml")
                                                       if p.name != "kustomization.yaml")
    assert kustomization["namespace"] == K8S_NAMESPACE
    image = kustomization["images"][0]
    assert f"{image['newName']}:{image['newTag']}" == TRAINER_IMAGE

    chief, workers, service = docs["Job/nas-chief"], docs["Job/nas-workers"], docs["Service/nas-chief"]
    assert workers["spec"]["completionMode"] == "Indexed"
    assert workers["spec"]["completions"] == workers["spec"]["parallelism"] >= 2
    chief_pod, worker_pod = chief["spec"]["template"], workers["spec"]["template"]
    assert service["spec"]["selector"].items() <= chief_pod["metadata"]["labels"].items()
    assert not service["spec"]["selector"].items() <= worker_pod["metadata"]["labels"].items()

    def env(pod):
        return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}

    chief_env, worker_env = env(chief_pod), env(worker_pod)
    assert chief_env["KERASTUNER_TUNER_ID"] == "chief"
    assert search_role({k: v for k, v in chief_env.items() if v}).kind == "chief"
    assert worker_env["KERASTUNER_TUNER_ID"] == "tuner$(WORKER_INDEX)"
    names = [e["name"] for e in worker_pod["spec"]["containers"][0]["env"]]
    assert names.index("WORKER_INDEX") < names.index("KERASTUNER_TUNER_ID"), "$(VAR) expands only earlier vars"
    assert worker_env["KERASTUNER_ORACLE_IP"] == service["metadata"]["name"]
    port = service["spec"]["ports"][0]
    assert chief_env["KERASTUNER_ORACLE_PORT"] == worker_env["KERASTUNER_ORACLE_PORT"] == str(port["port"])
    assert port["targetPort"] in [p["name"] for p in chief_pod["spec"]["containers"][0]["ports"]]

    for pod in (chief_pod, worker_pod):
        spec, container = pod["spec"], pod["spec"]["containers"][0]
        assert spec["serviceAccountName"] == K8S_TRIAL_SERVICE_ACCOUNT
        assert container["command"] == ["study", "nas"]
        assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim/nas-search"][
            "metadata"]["name"]
        assert container["volumeMounts"][0]["mountPath"] == "/search"
    # Chief and workers run one search: identical arguments, the search folder on the shared volume.
    assert chief_pod["spec"]["containers"][0]["args"] == worker_pod["spec"]["containers"][0]["args"]
    assert "--search-dir=/search/$(RUN_ID)" in chief_pod["spec"]["containers"][0]["args"]
    assert docs["PersistentVolumeClaim/nas-search"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_manifest_arguments_parse_with_the_settings_they_are_given():
    docs = _manifests()
    literals = docs["Component/kustomization"]["configMapGenerator"][0]["literals"]
    settings = dict(item.split("=", 1) for item in literals)
    args = [a.replace("$(", "{").replace(")", "}").format(**settings)
            for a in docs["Job/nas-chief"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(args))
    assert (config.block_type, config.normalize, config.augment, config.pretrained) == ("resnet", True, False, False)
    assert config.block_type in BLOCK_TYPES and config.tuner in TUNERS


def test_manifests_are_valid_kubernetes_objects():
    from kubernetes.client import ApiClient

    client = ApiClient()
    for key, doc in _manifests().items():
        kind = key.split("/")[0]
        if kind in ("Kustomization", "Component"):
            continue
        model = client._ApiClient__deserialize(doc, f"V1{kind}")
        assert model.metadata.name == doc["metadata"]["name"]
    assert Path(K8S_NAS / "kustomization.yaml").exists()
