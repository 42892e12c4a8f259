"""Settings from ``prodcontrol.toml`` and ``PRODCONTROL_*`` environment variables.

Precedence: explicit arguments, then the environment, then the toml file, then defaults.
Secrets (Slack token and signing secret, web token) are accepted only from the environment:
a secret in a file ends up in git sooner or later.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from prodcontrol.errors import ConfigError, Problem

SECRET_FIELDS = (
    "slack_bot_token",
    "slack_signing_secret",
    "web_token",
    "smtp_password",
    "web_link_secret",
    "mlflow_webhook_secret",
)
CONFIG_ENV = "PRODCONTROL_CONFIG"
DEFAULT_CONFIG = Path("prodcontrol.toml")


def config_file() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))


class Settings(BaseSettings):
    """Where prodcontrol keeps its state and how it reaches the outside systems."""

    model_config = SettingsConfigDict(
        env_prefix="PRODCONTROL_", extra="forbid", frozen=True, validate_default=True
    )

    state_dir: Path = Field(Path(".prodcontrol"), description="local state: DBs, artifacts, outbox")
    catalog_dir: Path | None = Field(None, description="control catalog; default: the bundled one")
    inventory_dir: Path = Field(Path("inventory"), description="models.yaml and people.yaml")
    mlflow_tracking_uri: str | None = Field(None, description="default: SQLite under state_dir")
    database_url: str | None = Field(
        None, description="evidence DB; default: SQLite under state_dir"
    )
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_base_url: str = "https://slack.com/api/"
    web_base_url: str = Field(
        "http://127.0.0.1:8000", description="links in messages; default: where `serve` listens"
    )
    web_token: SecretStr | None = None
    web_auth_header: str | None = Field(None, description="trusted reverse-proxy user header")
    web_trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of the proxies whose web_auth_header is believed; empty: ignored",
    )
    prefect_ui_url: str | None = None
    organisation: str | None = Field(
        None, description="the provider's or deployer's name, for serious-incident reports"
    )
    smtp_host: str | None = Field(None, description="SMTP relay for e-mail escalations")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_from: str | None = Field(None, description="From: address of escalation e-mails")
    smtp_username: str | None = Field(None, description="SMTP login; unset: no AUTH")
    smtp_password: SecretStr | None = None
    web_link_secret: SecretStr | None = Field(
        None, description="signs the one-time decision links in e-mails; unset: no links"
    )
    mlflow_webhook_secret: SecretStr | None = Field(
        None, description="HMAC secret MLflow signs its registry webhooks with"
    )
    retention_days: int = Field(183, ge=1, description="minimum evidence retention (EU AI Act 19)")
    evidence_signing_key: str | None = Field(
        None, description="Ed25519 key signing the chain: a PEM file path (or the PEM, env only)"
    )
    evidence_public_key: Path | None = Field(
        None, description="public key that verify trusts (a regulator's machine has only this)"
    )
    evidence_anchor_file: Path | None = Field(
        None, description="JSON-lines anchor file, on storage the database operator cannot write"
    )
    evidence_anchor_scope: str | None = Field(
        None,
        description="the name this store's anchors carry in a shared MLflow (default: the "
        "evidence database URL without its password); keep it when the database moves",
    )
    evidence_anchor_interval_s: int = Field(
        3600, ge=0, description="at most one automatic anchor per this many seconds (0: every run)"
    )
    evidence_anchor_max_age_s: int = Field(
        86400, ge=60, description="verify fails when entries stay unanchored longer than this"
    )

    @field_validator("web_trusted_proxies", mode="before")
    @classmethod
    def _cidr_list(cls, value: Any) -> Any:
        """``PRODCONTROL_WEB_TRUSTED_PROXIES=10.0.0.5/32,10.1.0.0/16`` (or a TOML list)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path if path.is_file() else None)
        return (init_settings, env_settings, toml)

    # ------------------------------------------------------------------ derived locations

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def artifact_dir(self) -> Path:
        return self.state_path / "artifacts"

    @property
    def outbox_file(self) -> Path:
        return self.state_path / "outbox.log"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_path / 'evidence.db'}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.state_path / 'mlflow.db'}"

    def resolved_catalog_dir(self) -> Path:
        from prodcontrol.catalog.loader import default_catalog_dir

        return self.catalog_dir or default_catalog_dir()


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning every mistake into a ConfigError that names the file or variable."""
    path = config_file()
    problems = _secrets_in_file(path) + _unknown_env()
    if any("TOML syntax" in p.message for p in problems):
        raise ConfigError(problems)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            source = f"{path} or PRODCONTROL_{name.upper()}"
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                known = ", ".join(Settings.model_fields)
                message = f"unknown setting; known settings: {known}"
            problems.append(Problem(source, _line_of(path, name), name, message))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return settings


def _secrets_in_file(path: Path) -> list[Problem]:
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) if found else 0
        return [Problem(str(path), line, "", f"TOML syntax error: {exc}; fix the syntax")]
    return [
        Problem(
            str(path),
            _line_of(path, key),
            key,
            f"secrets are read only from the environment; remove it here and set "
            f"PRODCONTROL_{key.upper()} instead",
        )
        for key in SECRET_FIELDS
        if key in data
    ] + [
        Problem(
            str(path),
            _line_of(path, "evidence_signing_key"),
            "evidence_signing_key",
            "a private key in a file under version control is no secret: name the key's file "
            "here instead, or put the PEM in PRODCONTROL_EVIDENCE_SIGNING_KEY",
        )
        for value in [data.get("evidence_signing_key")]
        if isinstance(value, str) and "-----BEGIN" in value
    ]


def _unknown_env() -> list[Problem]:
    known = {f"PRODCONTROL_{name.upper()}" for name in Settings.model_fields}
    # PRODCONTROL_TOKEN is the person's own credential, read by the CLI, not a setting
    known |= {
        CONFIG_ENV,
        "PRODCONTROL_TOKEN",
        "PRODCONTROL_REQUIRE_POSTGRES",
        "PRODCONTROL_REQUIRE_CHROMIUM",
    }
    return [
        Problem("environment", 0, name, "unknown PRODCONTROL_ variable; check the spelling")
        for name in os.environ
        if name.startswith("PRODCONTROL_")
        and name not in known
        and not name.startswith("PRODCONTROL_REQUIRE_")
    ]


def _line_of(path: Path, key: str) -> int:
    if not path.is_file():
        return 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith(key):
            return number
    return 0
