"""Google Cloud Storage for the I/O seam (``io`` calls these for gs:// paths).

Every request has a bounded retry with a total deadline (``GESTURENET_GCS_DEADLINE`` seconds,
default 30): an unreachable endpoint is one line naming the host after the deadline, not a
hang. Missing credentials, a denied request and an unreachable endpoint are the user's
environment, so they are ``UserInputError`` (exit 2) with what to do; nothing else is caught.
"""

from __future__ import annotations

import contextlib
import functools
import os

from gesturenet_lib.errors import UserInputError

DEADLINE_ENV = "GESTURENET_GCS_DEADLINE"
DEFAULT_DEADLINE_S = 30.0
CREDENTIALS_HELP = ("give Google Cloud credentials: `gcloud auth application-default login`, "
                    "or GOOGLE_APPLICATION_CREDENTIALS=<service-account key file>, or run "
                    "with an attached service account (GKE Workload Identity, a VM's); for an "
                    "emulator set STORAGE_EMULATOR_HOST")


def deadline_s() -> float:
    raw = os.environ.get(DEADLINE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_DEADLINE_S
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise UserInputError(f"{DEADLINE_ENV}={raw}: must be a number of seconds in (0, 86400)")
    return value


def call() -> dict:
    """The keyword arguments every request gets: per-attempt timeout and total deadline."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    total = deadline_s()
    return {"timeout": min(total, 60.0), "retry": DEFAULT_RETRY.with_timeout(total)}


def endpoint() -> str:
    return os.environ.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com"


@functools.lru_cache(maxsize=1)
def client():
    """One client per process (it holds a connection pool)."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"),
                              credentials=AnonymousCredentials())
    try:
        return storage.Client()
    except DefaultCredentialsError:
        raise UserInputError(f"gs://: no Google Cloud credentials found; {CREDENTIALS_HELP}"
                             ) from None


@contextlib.contextmanager
def errors(uri: str):
    """Turn the environment's failures on ``uri`` into one line each (exit 2)."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    try:
        yield
    except (auth.DefaultCredentialsError, auth.RefreshError) as err:
        raise UserInputError(f"{uri}: Google Cloud credentials are missing or expired "
                             f"({type(err).__name__}); {CREDENTIALS_HELP}") from None
    except (api.Forbidden, api.Unauthorized) as err:
        raise UserInputError(f"{uri}: access denied ({err.code}): the credentials in use may "
                             "not read or write this bucket") from None
    except (api.RetryError, auth.TransportError, ConnectionError, TimeoutError) as err:
        cause = getattr(err, "cause", None) or err
        raise UserInputError(f"{uri}: no answer from {endpoint()} within {deadline_s():g} s "
                             f"({type(cause).__name__}); check the network or "
                             f"STORAGE_EMULATOR_HOST, or raise {DEADLINE_ENV}") from None
    except Exception as err:  # requests' ConnectionError is not the builtin one
        if type(err).__module__.startswith(("requests", "urllib3")):
            raise UserInputError(f"{uri}: cannot reach {endpoint()} ({type(err).__name__}); "
                                 "check the network or STORAGE_EMULATOR_HOST") from None
        raise


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = str(uri)[len("gs://"):].partition("/")
    if not bucket:
        raise UserInputError(f"{uri}: a gs:// URI needs a bucket name")
    return bucket, key


def blob(uri: str):
    bucket, key = split(uri)
    return client().bucket(bucket).blob(key)


def _folder(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of ``uri`` taken as a folder."""
    bucket, key = split(uri)
    return bucket, key.rstrip("/") + "/" if key else ""


def list_names(uri: str, delimiter: str | None = None):
    """(bucket, prefix, object names, sub-prefixes) of the objects under ``uri``."""
    bucket, prefix = _folder(uri)
    listing = client().list_blobs(bucket, prefix=prefix, delimiter=delimiter, **call())
    names = [b.name for b in listing]
    return bucket, prefix, names, sorted(listing.prefixes) if delimiter else []


def has_prefix(uri: str) -> bool:
    bucket, prefix = _folder(uri)
    return any(True for _ in client().list_blobs(bucket, prefix=prefix, max_results=1,
                                                 **call()))
