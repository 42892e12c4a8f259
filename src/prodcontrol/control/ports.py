"""The ports each use case of the loop takes, as Protocols (DESIGN §4: no service locator).

A use case names the outside systems it needs, typed by the port Protocols
(:mod:`prodcontrol.ports`, :mod:`prodcontrol.evidence.port`, :mod:`prodcontrol.identity.port`),
and can reach nothing else: ``mypy --strict`` holds it to that. The composition root
(:class:`prodcontrol.runtime.Runtime`) builds the adapters from the settings and has every one
of these attributes, so the CLI, the web app and the flows pass it as it is; a test or an
embedder passes any object that has just the attributes a use case names, e.g. a
:class:`Ports` of fakes from :mod:`prodcontrol.testing`.

Each Protocol adds what its use cases need to the ones before it:

===================  ======================================================================
``EvidencePorts``    the evidence store, the clock, the catalog and inventory (``config``)
``AnchorPorts``      the store, the clock and the settings (anchor sinks, intervals)
``ActionPorts``      + the model registry: apply the queued, version-bound actions
``IdentityPorts``    + the identity store: decision credentials, personal tokens
``GatePorts``        actions + identity + the subscribers of domain events: decide, expire
``TickPorts``        + the settings: the escalation tick (e-mail fallback, anchoring)
``RunPorts``         + metrics, datasets, checker, GenAI, loss model: open, measure, close a run
===================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prodcontrol.catalog.config import Config
    from prodcontrol.clock import Clock
    from prodcontrol.control.gates.events import Subscriber
    from prodcontrol.engine.performance import LossRegressor
    from prodcontrol.evidence.port import EvidenceStore
    from prodcontrol.identity.port import IdentityStore
    from prodcontrol.ports import (
        DatasetSource,
        DriftChecker,
        GenAIEvaluations,
        MetricSource,
        ModelRegistry,
    )
    from prodcontrol.settings import Settings


class EvidencePorts(Protocol):
    @property
    def store(self) -> EvidenceStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def config(self) -> Config: ...


class AnchorPorts(Protocol):
    @property
    def store(self) -> EvidenceStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def settings(self) -> Settings: ...


class ActionPorts(EvidencePorts, Protocol):
    @property
    def registry(self) -> ModelRegistry: ...


class IdentityPorts(EvidencePorts, Protocol):
    @property
    def identity(self) -> IdentityStore: ...


class GatePorts(ActionPorts, IdentityPorts, Protocol):
    @property
    def subscribers(self) -> Sequence[Subscriber]: ...


class TickPorts(GatePorts, AnchorPorts, Protocol):
    pass


class RunPorts(TickPorts, Protocol):
    @property
    def metrics(self) -> MetricSource: ...

    @property
    def datasets(self) -> DatasetSource: ...

    @property
    def checker(self) -> DriftChecker: ...

    @property
    def genai(self) -> GenAIEvaluations: ...

    @property
    def loss_regressor(self) -> LossRegressor: ...


@dataclass
class Ports:
    """Ports given one by one (tests, embedders): satisfies ``GatePorts`` as it stands, and
    ``TickPorts`` with ``settings``; ``RunPorts`` needs the Runtime's measuring adapters too."""

    store: EvidenceStore
    clock: Clock
    config: Config
    registry: ModelRegistry
    identity: IdentityStore
    subscribers: Sequence[Subscriber] = field(default_factory=list)
