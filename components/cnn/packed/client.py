"""``study train`` as a pack server's client (see ``server``): the trial's process, trained elsewhere.

No Keras or JAX here: the trial's process only hands its trial over, prints the metrics lines the
server sends it (Katib's StdOut collector reads them from this process, as from any trial) and
ends as the trial ended. Killing the process (Katib's early stopping) closes the connection, and
the member leaves its pack at the round's end.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import PurePosixPath

from components.cnn.hparams import TrialConfig
from components.core.errors import TrialDiverged, UserError

SERVER_ENV = "STUDY_PACK_SERVER"


class PackTrialFailed(Exception):
    """The trial failed in its pack, or its pack server ended first: the trial fails (exit status 1)."""

    exit_code = 1


def pack_server() -> str | None:
    """The socket of the pack server this trial is to train in, if the sweep runs one."""
    return os.environ.get(SERVER_ENV) or None


def train_in_pack(path: str, config: TrialConfig, data_uri: str, output_uri: str,
                  log: Callable[[str], None] = print) -> dict:
    """Train the trial in the pack server at ``path``; print its metrics lines; its ``metrics.json``."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError as error:
        raise UserError(f"{SERVER_ENV}={path}: no pack server answers there ({error.strerror or error}); "
                        f"unset {SERVER_ENV} to train this trial in its own process") from None
    with conn, conn.makefile("r", encoding="utf-8") as reader:
        name = PurePosixPath(output_uri.rstrip("/")).name or output_uri  # Katib's trial name
        request = {"name": name, "config": config.as_dict(), "data": data_uri, "output": output_uri}
        conn.sendall((json.dumps(request) + "\n").encode())
        log(f"trial: training in the pack server at {path}")
        for text in reader:
            message = json.loads(text)
            if "line" in message:
                print(message["line"], flush=True)
                continue
            end, error = message.get("end"), message.get("error")
            if end in ("finished", "early_stopped"):
                return message["metrics"]
            if end == "refused":
                raise UserError(f"pack server: {error}")
            if end == "failed" and error and "training diverged" in error:
                raise TrialDiverged(error)
            raise PackTrialFailed(f"trial {name} {end} in its pack: {error}")
    raise PackTrialFailed(f"trial {name}: the pack server at {path} ended before the trial did")


def run_in_pack(path: str, config: TrialConfig, data_uri: str, output_uri: str, warm_start: str | None,
                log: Callable[[str], None]) -> int:
    """``study train``'s work when its sweep runs a pack server: the trial's exit status."""
    if warm_start:
        raise UserError("--warm-start (pbt's trials) does not train in a pack; "
                        "run the sweep without sweeps.local_pack_slots")
    try:
        metrics = train_in_pack(path, config, data_uri, output_uri, log=log)
    except PackTrialFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    # No "name=value" here: Katib's StdOut collector would read it as one more observation.
    log(f"trial: done in a pack; best val_accuracy {metrics['best']['val_accuracy']:.4f} at epoch "
        f"{metrics['best']['epoch']} -> {output_uri}")
    return 0
