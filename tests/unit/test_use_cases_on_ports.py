"""The central use cases run on the ports they name, with no Runtime and no database.

Decide (two-person gate, accept applied to the registry, the gate's domain event handed to a
subscriber) and the escalation tick, on a :class:`prodcontrol.control.ports.Ports` of fakes:
the in-memory evidence store, the fake registry, the in-memory identity store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from prodcontrol.catalog.validate import load_config
from prodcontrol.control.escalation import escalation
from prodcontrol.control.gates import decisions
from prodcontrol.control.gates.events import GATE_CLOSED, Handled, Subscriber
from prodcontrol.control.ports import Ports
from prodcontrol.evidence import DomainEvent, FindingIn, VerdictIn
from prodcontrol.settings import Settings
from prodcontrol.testing import (
    FakeRegistry,
    InMemoryEvidenceStore,
    InMemoryIdentityStore,
    ManualClock,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "fraud-detector"  # high tier in the example inventory: two approvals


class TickingClock(ManualClock):
    def now(self) -> datetime:
        return self.advance(timedelta(milliseconds=1))


@dataclass
class TickFakes(Ports):
    settings: Settings = field(default_factory=Settings)


def fakes(heard: list[str]) -> TickFakes:
    clock = TickingClock()
    registry = FakeRegistry()
    registry.add_version(MODEL, "1", tags={"prodcontrol.approved": "true"})
    registry.add_version(MODEL, "2")
    registry.set_alias(MODEL, "champion", "2")

    def note(event: DomainEvent) -> Handled:
        heard.append(f"{event.kind}:{event.payload['status']}")
        return Handled()

    return TickFakes(
        store=InMemoryEvidenceStore(clock=clock),
        clock=clock,
        config=load_config(ROOT / "control_catalog", ROOT / "examples"),
        registry=registry,
        identity=InMemoryIdentityStore(),
        subscribers=[Subscriber("note", GATE_CLOSED, note)],
        settings=Settings(state_dir=ROOT / "no-such-dir", inventory_dir=ROOT / "examples"),
    )


def registry_tags(ports: Ports, version: str) -> dict[str, str]:
    assert isinstance(ports.registry, FakeRegistry)
    return dict(ports.registry.versions[MODEL][version].ref.tags)


def failing_run(ports: Ports) -> str:
    run = ports.store.start_run(MODEL, "2", "high", "test")
    verdict = VerdictIn(
        control_id="dataset-drift",
        kind="drift",
        verdict="fail",
        value=0.5,
        warn=0.1,
        fail=0.3,
        direction="higher_is_worse",
        reason="drifted",
    )
    finding = FindingIn(control_id="dataset-drift", severity="high", blocking=True)
    ports.store.finish_run(run.id, "failed", [verdict], [], [finding])
    return ports.store.list_findings(model=MODEL)[0].id


def test_decide_on_fakes_applies_the_outcome_and_tells_the_subscribers() -> None:
    heard: list[str] = []
    ports = fakes(heard)
    finding = ports.store.get_finding(failing_run(ports))
    gate = decisions.open_finding_gate(ports, finding, "high")
    assert gate.required_approvals == 2
    decisions.decide(
        ports, gate.id, person="gustav", decision="approve", channel="cli", reason="ok"
    )
    assert heard == []
    done = decisions.decide(
        ports, gate.id, person="dana", decision="approve", channel="slack", reason="seasonal"
    )
    assert done.status == "approved" and heard == ["gate_decided:approved"]
    [action] = ports.store.list_actions(MODEL)
    assert (action.action, action.status, action.model_version) == ("accept", "applied", "2")
    assert registry_tags(ports, "2")["prodcontrol.last_action"] == "accept"
    assert [e.status for e in ports.store.list_domain_events()] == ["done"]
    assert ports.store.verify().ok


def test_the_escalation_tick_on_fakes_starts_the_chain_and_expires_nothing_early() -> None:
    ports = fakes([])
    failing_run(ports)
    result = escalation.tick(ports)
    assert result.started == 1
    [chain] = ports.store.list_escalations(status="active")
    assert chain.model == MODEL
    assert escalation.tick(ports).started == 0  # one chain per finding
