"""Beam's DaskRunner on a real Dask cluster, checked before and watched while it runs.

Beam's runner trusts the cluster: an address without a port is a Python error, a dead
scheduler is a connection traceback, workers that lack the project die unpickling the first
task (the scheduler logs "Lost all workers" and the driver waits for ever), and a scheduler
killed mid-run ends the wait as if the pipeline had finished. So, around Beam's own run:

- ``check_cluster``, before anything is submitted: the address is ``[tcp://]HOST:PORT``, a
  scheduler answers there, it has workers, and every worker imports the project's
  ``apache_beam`` and ``gesturenet_lib`` at the driver's versions; it answers the cluster's
  worker threads, which size the work's partitions;
- ``wait``, instead of Beam's ``wait_until_finish``: the run's future must end *finished*; a
  lost scheduler, or a cluster with no worker for ``IDLE_DEADLINE_S``, is a one-line
  UserInputError (exit 2), and nothing is half-written since the outputs are renamed into
  place only by the last step."""

from __future__ import annotations

import re
import socket
import time
from concurrent.futures import CancelledError

from gesturenet_lib.errors import UserInputError

ADDRESS_FLAG = "--dask_client_address"
CONNECT_TIMEOUT_S = 10
IDLE_DEADLINE_S = 120      # no worker at all for this long: the run cannot progress
POLL_S = 1.0
# Evaluated on each worker: what unpickling the pipeline's steps needs, with its versions.
_WORKER_PROBE = ("(__import__('apache_beam').__version__, "
                 "__import__('gesturenet_lib').__version__)")

_ADDRESS = re.compile(r"^(?:tcp://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})$")


def host_and_port(address: str) -> tuple[str, int]:
    """``[tcp://]HOST:PORT`` -> (host, port), or a UserInputError naming the flag."""
    match = _ADDRESS.match(address.strip())
    port = int(match["port"]) if match else 0
    if not match or not 1 <= port <= 65535:
        raise UserInputError(f"{ADDRESS_FLAG} {address}: expected tcp://HOST:PORT "
                             "(the scheduler's address, port included)")
    return match["host"].strip("[]"), port


def check_cluster(address: str) -> int:
    """A scheduler with workers that can run the pipeline answers at ``address``; returns
    the worker threads it has."""
    import apache_beam
    from distributed import Client

    import gesturenet_lib

    host, port = host_and_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise UserInputError(f"{ADDRESS_FLAG} {address}: no Dask scheduler answers there "
                             f"({err.strerror or err})") from None
    try:
        with Client(address, timeout=CONNECT_TIMEOUT_S) as client:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise UserInputError(f"{ADDRESS_FLAG} {address}: the scheduler has no "
                                     f"workers (waited {CONNECT_TIMEOUT_S} s)") from None
            answers = client.run(eval, _WORKER_PROBE, on_error="return")
            threads = sum(client.nthreads().values())
    except UserInputError:
        raise
    except (OSError, TimeoutError) as err:
        raise UserInputError(f"{ADDRESS_FLAG} {address}: not a Dask scheduler, or it does "
                             f"not answer ({type(err).__name__}: {err})") from None
    wanted = (apache_beam.__version__, gesturenet_lib.__version__)
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise UserInputError(f"{ADDRESS_FLAG} {address}: worker {worker} cannot run the "
                                 f"pipeline ({type(answer).__name__}: {answer}); install "
                                 "this project (or run its image) on every worker") from None
        if tuple(answer) != wanted:
            raise UserInputError(
                f"{ADDRESS_FLAG} {address}: worker {worker} has apache_beam {answer[0]} and "
                f"gesturenet_lib {answer[1]}; this driver has {wanted[0]} and {wanted[1]}")
    return threads


def wait(result, address: str | None) -> None:
    """Wait for Beam's DaskRunnerResult; a cluster lost or left without workers ends the wait
    with a UserInputError, and a failed step raises its own error (Beam gathers it)."""
    from distributed import wait as wait_for

    futures = result.futures if isinstance(result.futures, list | tuple) else [result.futures]
    where = address or "the local Dask cluster"
    idle_since = None
    while not all(f.done() for f in futures):
        try:  # returns as soon as the run ends: no sleep added to it
            wait_for(futures, timeout=POLL_S)
        except (TimeoutError, CancelledError):  # a cancelled run is judged below
            pass
        # The client leaves "running" the moment its scheduler connection drops; a new
        # scheduler would not know the run's tasks, so that is the end of the run.
        lost = result.client.status != "running"
        try:
            workers = 0 if lost else result.client.nthreads()
        except Exception:  # the scheduler went away between the two calls
            lost = True
        if lost:
            result.client.close(timeout=CONNECT_TIMEOUT_S)
            raise UserInputError(f"dataset_convert: the Dask cluster at {where} was lost "
                                 "before the pipeline finished; no output was written, run "
                                 "again")
        idle_since = None if workers else idle_since or time.monotonic()
        if idle_since and time.monotonic() - idle_since > IDLE_DEADLINE_S:
            result.cancel()
            raise UserInputError(f"dataset_convert: the Dask cluster at {where} has had no "
                                 f"worker for {IDLE_DEADLINE_S} s (see the scheduler's log: "
                                 "workers that die on start or on the first task)")
    try:
        result.wait_until_finish()  # raises a step's error
        unfinished = [f.status for f in futures if f.status != "finished"]
    finally:
        # Beam leaves its client connected; closed here, a scheduler stopped after the run
        # is not met by the client's reconnection tracebacks.
        result.client.close(timeout=CONNECT_TIMEOUT_S)
    if unfinished:
        raise UserInputError(f"dataset_convert: the Dask cluster at {where} lost the run "
                             f"(its result is {unfinished[0]}); no output was written, run "
                             "again")
