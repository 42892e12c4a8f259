"""The composition root: settings in, wired adapters out. CLI, web and flows all start here.

Tests and embedders pass their own adapters (fakes from :mod:`prodcontrol.testing`, or a
client pointed elsewhere) as keyword arguments; anything not passed is built from the settings
on first use, so a command that never talks to MLflow never imports it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.validate import load_config
from prodcontrol.clock import Clock, SystemClock
from prodcontrol.engine.performance import LossRegressor
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.identity.port import IdentityStore
from prodcontrol.ports import (
    DatasetSource,
    DriftChecker,
    GenAIEvaluations,
    MetricSource,
    ModelRegistry,
    Notifier,
)
from prodcontrol.settings import Settings, load_settings

if TYPE_CHECKING:
    from prodcontrol.adapters.smtp import SmtpNotifier
    from prodcontrol.control.gates.events import Subscriber
    from prodcontrol.evidence.integrity import VerifyPolicy
    from prodcontrol.evidence.signing import SigningKey, VerifyKey


class Runtime:
    """Builds each outside-system adapter once, on first use, from the settings."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        **adapters: Any,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        known = {
            "config",
            "store",
            "identity",
            "metrics",
            "registry",
            "datasets",
            "checker",
            "notifier",
            "loss_regressor",
            "genai",
            "subscribers",
        }
        unknown = set(adapters) - known
        if unknown:
            raise TypeError(f"unknown adapter(s) {sorted(unknown)}; known: {sorted(known)}")
        # cached_property reads the instance dict first: a passed adapter wins
        self.__dict__.update(adapters)

    @classmethod
    def from_options(
        cls, catalog: Path | None = None, inventory: Path | None = None, clock: Clock | None = None
    ) -> Runtime:
        return cls(load_settings(catalog_dir=catalog, inventory_dir=inventory), clock)

    @cached_property
    def config(self) -> Config:
        return load_config(self.settings.resolved_catalog_dir(), self.settings.inventory_dir)

    @cached_property
    def store(self) -> EvidenceStore:
        from prodcontrol.adapters.store.migrate import ensure_schema
        from prodcontrol.adapters.store.sql import SqlEvidenceStore

        self.settings.state_path.mkdir(parents=True, exist_ok=True)
        url = self.settings.resolved_database_url
        ensure_schema(url)
        return SqlEvidenceStore(url, clock=self.clock, signer=self.signing_key)

    def verify_policy(self) -> VerifyPolicy:
        """What ``evidence verify`` holds the store to: now, the anchor age, the retention."""
        from datetime import timedelta

        from prodcontrol.evidence.integrity import VerifyPolicy

        return VerifyPolicy(
            now=self.clock.now(),
            anchor_max_age=timedelta(seconds=self.settings.evidence_anchor_max_age_s),
            retention_days=self.settings.retention_days,
        )

    @cached_property
    def signing_key(self) -> SigningKey | None:
        """The evidence signing key, when ``evidence_signing_key`` is set."""
        from prodcontrol.evidence.signing import SigningKey

        value = self.settings.evidence_signing_key
        return SigningKey.from_setting(value) if value else None

    def trusted_keys(self) -> list[VerifyKey]:
        """The public keys verify trusts: the signing key's, and ``evidence_public_key``."""
        from prodcontrol.evidence.signing import VerifyKey

        keys = [self.signing_key.verify_key] if self.signing_key is not None else []
        if self.settings.evidence_public_key is not None:
            keys.append(VerifyKey.load(self.settings.evidence_public_key.expanduser()))
        return keys

    @cached_property
    def identity(self) -> IdentityStore:
        """Personal tokens, the replay cache, decision credentials: beside the evidence."""
        from prodcontrol.adapters.store.identity import SqlIdentityStore

        store = self.store  # creates or migrates the schema first
        return SqlIdentityStore(getattr(store, "url", self.settings.resolved_database_url))

    @cached_property
    def subscribers(self) -> list[Subscriber]:
        """Who reacts to a closed gate's domain event: its escalations and Slack messages, and
        the Prefect flow run waiting on it (see :mod:`prodcontrol.control.gates.events`)."""
        from prodcontrol.control.escalation.escalation import gate_closed_subscriber
        from prodcontrol.orchestration import prefect_subscribers

        return [gate_closed_subscriber(self), *prefect_subscribers(self.store)]

    @cached_property
    def metrics(self) -> MetricSource:
        """MLflow metrics and versions: the registry adapter when it reads too (MLflow does)."""
        registry = self.registry
        if isinstance(registry, MetricSource):
            return registry
        from prodcontrol.adapters.mlflow import MlflowAdapter

        return MlflowAdapter(self.settings.resolved_tracking_uri)

    @cached_property
    def registry(self) -> ModelRegistry:
        from prodcontrol.adapters.mlflow import MlflowAdapter

        return MlflowAdapter(self.settings.resolved_tracking_uri)

    @cached_property
    def genai(self) -> GenAIEvaluations:
        """MLflow GenAI evaluation results and trace feedback (genai-evaluation controls)."""
        from prodcontrol.adapters.mlflow import MlflowAdapter
        from prodcontrol.adapters.mlflow_genai import MlflowGenAIEvaluations

        registry = self.registry
        shared = registry if isinstance(registry, MlflowAdapter) else None
        return MlflowGenAIEvaluations(self.settings.resolved_tracking_uri, shared)

    @cached_property
    def datasets(self) -> DatasetSource:
        from prodcontrol.adapters.datasets import FileSqlMlflowDatasets

        return FileSqlMlflowDatasets(
            base_dir=self.settings.inventory_dir, tracking_uri=self.settings.resolved_tracking_uri
        )

    @cached_property
    def checker(self) -> DriftChecker:
        from prodcontrol.adapters.evidently import EvidentlyChecker

        return EvidentlyChecker()

    @cached_property
    def loss_regressor(self) -> LossRegressor:
        """DLE's loss model for the ``performance_estimated`` control on regressors."""
        from prodcontrol.adapters.loss_model import GradientBoostingLoss

        return GradientBoostingLoss()

    @cached_property
    def notifier(self) -> Notifier:
        """Slack when a token is set, else the terminal/file outbox (printed by the CLI); with
        ``smtp_host`` set, people without a Slack id (and messages re-queued while Slack was
        down) are e-mailed instead."""
        slack = self._slack_notifier()
        if self.settings.smtp_host is None:
            return slack
        from prodcontrol.adapters.routing import RoutedNotifier

        return RoutedNotifier(slack, self.email_notifier(), self.config.inventory.people)

    def email_notifier(self) -> SmtpNotifier:
        """The SMTP adapter from the settings (``smtp_host`` must be set)."""
        from prodcontrol.adapters.smtp import SmtpNotifier
        from prodcontrol.control.escalation.email_links import links_for

        settings = self.settings
        assert settings.smtp_host is not None
        password = settings.smtp_password
        return SmtpNotifier(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from or f"prodcontrol@{settings.smtp_host}",
            people=self.config.inventory.people,
            journal=settings.state_path / "smtp-sent.jsonl",
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            links=lambda message: links_for(self, message),
        )

    def _slack_notifier(self) -> Notifier:
        from prodcontrol.adapters.slack import OutboxFileNotifier, SlackNotifier

        if self.settings.slack_bot_token is None:
            return OutboxFileNotifier(self.settings.outbox_file)
        return SlackNotifier(
            self.settings.slack_bot_token,
            people=self.config.inventory.people,
            base_url=self.settings.slack_base_url,
            store=self.store,
        )
