"""ProdControlHITLGateOperator: a run's gate decided in Airflow's own Required Actions UI.

Airflow's human-in-the-loop machinery (``HITLOperator``, standard provider) asks; prodcontrol's
rules decide. The task opens or adopts the run's gate, then writes an HITL request whose
subject and body name the model, the version, the failing controls and the approvals so far,
with three options (Approve, Reject, Request waiver) and a required reason. It is assigned to
the people who may still decide (Airflow user = people.yaml id or e-mail). The task waits
deferred (see below), holding no worker slot.

The answer comes back with the Airflow user who gave it; that user is mapped to one person in
people.yaml (:func:`prodcontrol_airflow.identity.person_for_user`) and the decision goes through
:func:`prodcontrol.control.gates.decisions.decide` (``channel="airflow"``): rights by role, two
distinct people, separation of duties; a refused answer fails the task with the reason and is
recorded. ``Request waiver`` grants a time-boxed waiver on each finding the gate covers
(:func:`prodcontrol.control.gates.waivers.grant`: the exception right, the tier's ``waiver_max``).

One Airflow HITL request takes one answer, so a gate that needs two approvals is asked by two
tasks (``approval_number`` 1 and 2, as in ``examples/prodcontrol_hitl_gate.py``): the second is
assigned to whoever may still decide, never to the first approver. A task whose gate is no
longer pending when it starts (decided in Slack, the CLI, the web page, or by the first task),
or whose approval was already given elsewhere, asks nothing and returns the outcome.

The task waits *deferred* on :class:`~prodcontrol_airflow.triggers.ProdControlHITLTrigger`
(not in Airflow 3.3's trigger-less ``awaiting_input``), because the evidence store is the
source of truth and someone has to watch it: the trigger polls both the Airflow request and the
gate. When the gate is settled elsewhere (or is past its due time) the trigger answers the
request ``Decided elsewhere`` itself, with the reason, so Required Actions stops asking; the task
then finishes with the gate's outcome (expiring an overdue gate first, which applies the tier's
timeout action). ``Decided elsewhere`` is not offered to people (Airflow refuses it, 400), and
an answer that says so while the gate is still open (a write into Airflow's database) fails the
task and decides nothing. An Airflow answer that arrives in the same instant as a decision
elsewhere is refused by prodcontrol's rules (one decision per person per gate, no decision on a
closed gate) and the task finishes with the gate's outcome: one gate, one set of decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Context, Param
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.execution_time.hitl import upsert_hitl_detail
from airflow.sdk.timezone import utcnow
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID
from prodcontrol_airflow.settings import RUNTIME_FIELDS, RuntimeArgs
from prodcontrol_airflow.triggers import DECIDED_ELSEWHERE, ProdControlHITLTrigger, still_asking

APPROVE, REJECT, WAIVER = "Approve", "Reject", "Request waiver"
ASKED = [APPROVE, REJECT, WAIVER]  # what people see; prodcontrol itself answers DECIDED_ELSEWHERE
OPTIONS = [*ASKED, DECIDED_ELSEWHERE]
GATE_PARAM = "prodcontrol_gate"


class ProdControlHITLGateOperator(RuntimeArgs, HITLOperator):
    """Ask the right holders in Airflow's UI; decide through prodcontrol's rules."""

    template_fields: Sequence[str] = (
        "subject",
        "body",
        "check_result",
        "gate_id",
        *RUNTIME_FIELDS,
    )
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        check_result: Any = None,
        gate_id: str | None = None,
        approval_number: int = 1,
        waiver_days: int = 14,
        response_timeout: timedelta | None = None,
        poll_interval: float = 5.0,
        catalog_dir: str | None = None,
        inventory_dir: str | None = None,
        database_url: str | None = None,
        state_dir: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        slack_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "prodcontrol gate")
        kwargs.pop("params", None)  # the DAG's own params: the form asks only for ours
        super().__init__(
            options=OPTIONS,
            defaults=None,
            params={
                "reason": Param("", type="string", description="why (required, recorded)"),
                GATE_PARAM: Param("", type="string", description="set by prodcontrol"),
            },
            response_timeout=response_timeout,
            **kwargs,
        )
        self.check_result = check_result
        self.gate_id = gate_id
        self.approval_number = approval_number
        self.waiver_days = waiver_days
        self.poll_interval = poll_interval
        self._init_runtime_args(
            catalog_dir=catalog_dir,
            inventory_dir=inventory_dir,
            database_url=database_url,
            state_dir=state_dir,
            mlflow_conn_id=mlflow_conn_id,
            slack_conn_id=slack_conn_id,
        )

    # ------------------------------------------------------------------ asking

    def the_gate(self, rt: Runtime, flow_run_id: str) -> Gate | None:
        """The gate given, or the checked run's gate (opened or adopted, one per run)."""
        from prodcontrol_airflow.gate import ProdControlGateOperator

        if self.gate_id:
            return rt.store.get_gate(self.gate_id)
        opener = ProdControlGateOperator(
            task_id=f"{self.task_id}.open", check_result=self.check_result, **self.runtime_kwargs()
        )
        opened = opener.open_gates(rt, flow_run_id)
        return opened[0] if opened else None

    def execute(self, context: Context) -> Any:
        rt = self.runtime()
        ti = context["ti"]
        flow_run_id = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]"
        gate = self.the_gate(rt, flow_run_id)
        if gate is None:
            self.log.info("no gate: nothing in this run needs a person's decision")
            return {"status": "no_gate"}
        gate = self._expired_if_due(rt, gate)
        if not self._asking(rt, gate):
            return self._outcome(rt, gate, asked=False)
        self._describe(rt, gate)
        return self._ask(context, rt, gate)

    def _expired_if_due(self, rt: Runtime, gate: Gate) -> Gate:
        """A pending gate past its due time gets the tier's timeout action now, as the ticker
        would apply it; nobody is asked about it."""
        from prodcontrol.control.gates.decisions import expire_due_gates

        if gate.status == "pending" and gate.due_at is not None and gate.due_at <= rt.clock.now():
            expire_due_gates(rt)
            return rt.store.get_gate(gate.id)
        return gate

    def _asking(self, rt: Runtime, gate: Gate) -> bool:
        return still_asking(gate, rt.store.decisions_for(gate.id), self.approval_number)

    def _ask(self, context: Context, rt: Runtime, gate: Gate) -> None:
        """Write the Airflow request (HITLOperator's), then defer on the trigger that also
        watches the gate (instead of HITLOperator's trigger-less wait on Airflow 3.3)."""
        ti_id = context["task_instance"].id
        upsert_hitl_detail(
            ti_id=ti_id,
            options=ASKED,
            subject=self.subject,
            body=self.body,
            defaults=self.defaults,
            multiple=self.multiple,
            params=self.serialized_params,
            assigned_users=self.assigned_users,
        )
        timeout_at = utcnow() + self.response_timeout if self.response_timeout else None
        self.hitl_summary_extra["timeout_datetime"] = timeout_at.isoformat() if timeout_at else None
        self.log.info("asking in Required Actions; waiting on the answer or on gate %s", gate.id)
        for notifier in self.notifiers:
            notifier(context)
        self.defer(
            trigger=ProdControlHITLTrigger(
                ti_id=ti_id,
                options=self.options,
                defaults=self.defaults,
                params=self.serialized_params,
                multiple=self.multiple,
                timeout_datetime=timeout_at,
                poke_interval=self.poll_interval,
                gate_id=gate.id,
                database_url=rt.settings.resolved_database_url,
                approval_number=self.approval_number,
            ),
            method_name="execute_complete",
        )

    def _describe(self, rt: Runtime, gate: Gate) -> None:
        from prodcontrol.control.gates.decisions import covered_findings, who_could_decide

        people = rt.config.inventory.people
        may = who_could_decide(rt, gate)
        decided = rt.store.decisions_for(gate.id)
        findings = covered_findings(rt, gate)
        self.subject = (
            f"{gate.model} v{gate.model_version}: gate needs {gate.required_approvals} "
            f"approval(s), this is {self.approval_number} of {gate.required_approvals}"
        )
        lines = [
            f"**{gate.model}** version {gate.model_version}: right `{gate.right}`; "
            f"on reject `{gate.on_reject}`, on timeout `{gate.on_timeout}` "
            f"(due {gate.due_at:%Y-%m-%d %H:%M} UTC)."
            if gate.due_at
            else f"**{gate.model}** version {gate.model_version}: right `{gate.right}`.",
            "",
            *[f"- `{f.control_id}`: **{f.verdict}**" for f in findings],
            "",
            "Approvals so far: "
            + (", ".join(f"{d.person} ({d.channel})" for d in decided) or "none"),
            "May decide now: " + ", ".join(people[p].name for p in may if p in people),
            "",
            "Give a reason. *Request waiver* accepts the findings for "
            f"{self.waiver_days} days (exception right). Your Airflow user must be your id or "
            "e-mail in people.yaml.",
        ]
        self.body = "\n".join(lines)
        self.assigned_users = [
            {"id": p, "name": people[p].name} for p in may if p in people
        ] or None
        self.params[GATE_PARAM] = gate.id

    # ------------------------------------------------------------------ the answer

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from prodcontrol.errors import DecisionRefused, ProdControlError

        from prodcontrol_airflow.identity import NotAuthenticated, person_for_user

        answer = super().execute_complete(context, event)
        rt = self.runtime()
        gate_id = str((answer["params_input"] or {}).get(GATE_PARAM) or self.params[GATE_PARAM])
        [choice] = answer["chosen_options"]
        if choice == DECIDED_ELSEWHERE:
            return self._settled_elsewhere(rt, gate_id)
        reason = str((answer["params_input"] or {}).get("reason") or "").strip()
        try:
            actor = person_for_user(rt, answer["responded_by_user"])
            if not reason:
                raise DecisionRefused("a reason is required for every decision")
            if choice == WAIVER:
                self._waive(rt, gate_id, actor.person, reason)
            else:
                self._decide(rt, gate_id, actor, choice, reason)
        except (NotAuthenticated, DecisionRefused) as exc:
            gate = rt.store.get_gate(gate_id)
            if self._asking(rt, gate):
                raise AirflowException(f"decision refused: {exc}") from None
            # decided elsewhere in the same instant: that decision stands, the refusal is recorded
            self.log.warning("this answer came after gate %s was decided: %s", gate_id, exc)
        except ProdControlError as exc:
            raise AirflowException(f"decision not recorded: {exc}") from None
        return self._outcome(rt, rt.store.get_gate(gate_id), asked=True)

    def _settled_elsewhere(self, rt: Runtime, gate_id: str) -> dict[str, Any]:
        """prodcontrol's own answer: the gate's outcome; an overdue gate is expired first."""
        gate = self._expired_if_due(rt, rt.store.get_gate(gate_id))
        if self._asking(rt, gate):
            raise AirflowException(
                f"the Airflow request was answered {DECIDED_ELSEWHERE!r} but gate {gate.id} is "
                f"still pending (approval {self.approval_number} of {gate.required_approvals} "
                "not given): nothing was decided; decide it in Slack, the CLI, the web page or "
                "by clearing this task to ask again"
            )
        return self._outcome(rt, gate, asked=True)

    def _decide(self, rt: Runtime, gate_id: str, actor: Any, choice: str, reason: str) -> None:
        from prodcontrol.control.gates.decisions import decide

        decide(
            rt,
            gate_id,
            person=actor.person,
            decision="approve" if choice == APPROVE else "reject",
            channel="airflow",
            reason=reason,
            credential=actor.credential,
        )

    def _waive(self, rt: Runtime, gate_id: str, person: str, reason: str) -> None:
        from prodcontrol.control.gates import waivers
        from prodcontrol.control.gates.decisions import covered_findings

        gate = rt.store.get_gate(gate_id)
        findings = covered_findings(rt, gate)
        tier = rt.config.tier(rt.config.model(gate.model))
        days = min(timedelta(days=self.waiver_days), tier.waiver_max)
        for finding in findings:
            if finding.status == "open":
                waivers.grant(rt, finding.id, approver=person, reason=reason, valid_for=days)

    def _outcome(self, rt: Runtime, gate: Gate, *, asked: bool) -> dict[str, Any]:
        decisions = rt.store.decisions_for(gate.id)
        return {
            "status": gate.status,
            "gate_id": gate.id,
            "model": gate.model,
            "model_version": gate.model_version,
            "asked_in_airflow": asked,
            "approvals": f"{sum(d.decision == 'approve' for d in decisions)}"
            f"/{gate.required_approvals}",
            "deciders": [f"{d.person}:{d.decision}:{d.channel}" for d in decisions],
        }
