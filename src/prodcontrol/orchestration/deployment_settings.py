"""The settings a deployment carries to its workers, and the check that a run uses them.

A worker is often started in another directory, on another host, without the ``PRODCONTROL_*``
variables of whoever ran ``prodcontrol deploy``. So the non-secret settings (evidence database,
MLflow URI, state, catalog and inventory locations, with every path made absolute) go into the
deployment's job variables as environment variables, which a Prefect worker sets for each flow
run. Secrets never do: the Slack token, signing secret, web token, and any URL that holds a
password stay in the worker's own environment (or a Prefect Secret block that sets it), and
:func:`withheld` names them so the deploy command can say what the workers must provide.

The deployment also records which evidence database it was made for (password removed);
:func:`check_database` refuses a run whose own settings point elsewhere, instead of letting it
write its evidence into a new, empty database nobody looks at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from prodcontrol.adapters.store.engine import redact, sqlite_file
from prodcontrol.errors import UsageError
from prodcontrol.settings import SECRET_FIELDS, Settings

ENV_PREFIX = "PRODCONTROL_"


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def database_url(settings: Settings) -> str:
    """The evidence database URL with a relative SQLite path made absolute."""
    url = settings.resolved_database_url
    path = sqlite_file(url)
    return f"sqlite:///{path.resolve()}" if path is not None else url


def database_label(settings: Settings) -> str:
    """What a deployment records of its evidence database: the URL without its password."""
    return redact(database_url(settings))


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True  # an unparsable URL may hide a password: keep it out


def _secret(settings: Settings, field: str) -> bool:
    """A secret setting, or a value that holds one (a PEM private key given inline)."""
    value = getattr(settings, field)
    if field in SECRET_FIELDS or isinstance(value, SecretStr):
        return True
    return isinstance(value, str) and "-----BEGIN" in value


def job_env(settings: Settings) -> dict[str, str]:
    """``PRODCONTROL_*`` variables for the deployment's job variables: no secret among them."""
    env = {
        env_name("state_dir"): str(settings.state_path),
        env_name("inventory_dir"): str(settings.inventory_dir.expanduser().resolve()),
    }
    if settings.catalog_dir is not None:
        env[env_name("catalog_dir")] = str(settings.catalog_dir.expanduser().resolve())
    for field, url in (
        ("database_url", database_url(settings)),
        ("mlflow_tracking_uri", _tracking_uri(settings)),
    ):
        if not _has_password(url):
            env[env_name(field)] = url
    handled = {"state_dir", "inventory_dir", "catalog_dir", "database_url", "mlflow_tracking_uri"}
    dumped = settings.model_dump(mode="json")
    for field in sorted(settings.model_fields_set - handled):
        if _secret(settings, field) or dumped.get(field) is None:
            continue
        value = getattr(settings, field)
        if isinstance(value, Path):
            env[env_name(field)] = str(value.expanduser().resolve())
        elif field == "evidence_signing_key":  # a key file's path: absolute, like other paths
            env[env_name(field)] = str(Path(value).expanduser().resolve())
        else:
            env[env_name(field)] = _as_env(dumped[field])
    return env


def _tracking_uri(settings: Settings) -> str:
    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).expanduser()
        return f"sqlite:///{path.resolve()}"
    return uri


def _as_env(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def withheld(settings: Settings) -> list[str]:
    """The variables the workers must have themselves: secrets that are set, URLs with passwords."""
    names = [
        env_name(field)
        for field in Settings.model_fields
        if _secret(settings, field) and getattr(settings, field) is not None
    ]
    if _has_password(database_url(settings)):
        names.append(env_name("database_url"))
    if _has_password(_tracking_uri(settings)):
        names.append(env_name("mlflow_tracking_uri"))
    return sorted(names)


def check_database(expected: str | None, settings: Settings) -> None:
    """Refuse to run against another evidence database than the deployment was made for."""
    if expected is None:
        return
    actual = database_label(settings)
    if actual != expected:
        raise UsageError(
            f"this deployment keeps its evidence in {expected}, but this flow run's settings "
            f"point at {actual}; give the worker PRODCONTROL_DATABASE_URL={expected} (with its "
            "password) in its environment or a Prefect Secret block, or deploy again with "
            "`prodcontrol deploy` from the settings the workers should use"
        )
