"""components/nas/roles.py: single, chief or worker, from KerasTuner's KERASTUNER_* variables."""

import pytest

from components.core.errors import UserError
from components.nas.roles import ENV_ORACLE_IP, ENV_ORACLE_PORT, ENV_TUNER_ID, Role, search_role


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
