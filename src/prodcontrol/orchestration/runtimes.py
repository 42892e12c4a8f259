"""How a flow, a task or a worker process finds its :class:`~prodcontrol.runtime.Runtime`.

Flow parameters must be JSON and a Runtime holds open connections, so flows carry a small
:class:`RuntimeRef` instead and each process resolves it once: from the settings (what a
deployment uses), from an importable factory ``"package.module:function"`` (benchmarks, tests
that run in other processes), or from a Runtime registered in this process (tests with fakes).
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from prodcontrol.errors import UsageError
from prodcontrol.runtime import Runtime

_local: dict[str, Runtime] = {}
_resolved: dict[str, Runtime] = {}
_lock = threading.Lock()


class RuntimeRef(BaseModel):
    """Where to get the Runtime from; JSON, so it can be a flow parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog: str | None = None
    inventory: str | None = None
    factory: str | None = None
    local: str | None = None
    database: str | None = None
    """The evidence database a deployment was made for (no password); a run elsewhere refuses."""

    @property
    def crosses_processes(self) -> bool:
        """Whether another process can resolve this reference (a local one cannot)."""
        return self.local is None

    def key(self) -> str:
        """Same reference, same settings sources (environment, working directory): same key."""
        if self.factory is None and self.local is None:
            env = sorted((k, v) for k, v in os.environ.items() if k.startswith("PRODCONTROL_"))
            return json.dumps([self.model_dump(), env, os.getcwd()])
        return self.model_dump_json()


def register(rt: Runtime) -> RuntimeRef:
    """Make ``rt`` reachable from flows in this process (tests and embedders with fakes)."""
    key = uuid.uuid4().hex
    with _lock:
        _local[key] = rt
    return RuntimeRef(local=key)


def unregister(ref: RuntimeRef) -> None:
    with _lock:
        if ref.local is not None:
            _local.pop(ref.local, None)


def resolve(ref: RuntimeRef | dict[str, Any]) -> Runtime:
    """The Runtime ``ref`` names, built once per process."""
    ref = RuntimeRef.model_validate(ref)
    if ref.local is not None:
        try:
            return _local[ref.local]
        except KeyError:
            raise UsageError(
                f"runtime {ref.local} was registered in another process; pass a factory "
                "('module:function') or catalog/inventory paths to run across processes"
            ) from None
    key = ref.key()
    with _lock:
        if key not in _resolved:
            rt = _build(ref)
            from prodcontrol.orchestration.deployment_settings import check_database

            check_database(ref.database, rt.settings)
            _resolved[key] = rt
        return _resolved[key]


def _build(ref: RuntimeRef) -> Runtime:
    if ref.factory is None:
        from pathlib import Path

        return Runtime.from_options(
            catalog=Path(ref.catalog) if ref.catalog else None,
            inventory=Path(ref.inventory) if ref.inventory else None,
        )
    module_name, _, attr = ref.factory.partition(":")
    try:
        factory: Callable[[], Runtime] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"cannot load the runtime factory {ref.factory!r} ({exc}); "
            "give it as 'package.module:function' importable in every worker"
        ) from None
    return factory()
