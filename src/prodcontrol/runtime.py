"""The composition root: settings in, wired adapters out. CLI, web and flows all start here."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.validate import load_config
from prodcontrol.clock import Clock, SystemClock
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.settings import Settings, load_settings


class Runtime:
    """Builds each outside-system adapter once, on first use, from the settings."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

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
        return SqlEvidenceStore(url, clock=self.clock)
