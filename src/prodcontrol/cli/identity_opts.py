"""Who runs a decision command: the person of ``PRODCONTROL_TOKEN``, or a recorded break-glass.

``--as`` is kept for readability and scripts: when given it must name the token's person, so it
can no longer be used to speak for someone else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

import typer

from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Finding, Gate
from prodcontrol.identity import service as identity
from prodcontrol.identity.service import TOKEN_ENV, Actor
from prodcontrol.runtime import Runtime

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help=f"Your id: must be the person of {TOKEN_ENV} (with --break-glass: who you are).",
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why; kept as evidence.")]
BreakGlassReasonOpt = Annotated[str, typer.Option("--reason", help="With --break-glass: why.")]
BreakGlassOpt = Annotated[
    bool,
    typer.Option(
        "--break-glass",
        help="Emergency only: act without a token (needs --as and --reason); recorded as "
        "break-glass and sent to the tier's risk channel at once.",
    ),
]


def acting(
    rt: Runtime,
    as_person: str | None,
    *,
    break_glass: bool = False,
    reason: str = "",
    command: str,
    model: str | None = None,
) -> Actor:
    """The authenticated person for one CLI decision; exit 2 with how-to when there is none."""
    if break_glass:
        return identity.break_glass(rt, as_person, reason, command=command, model=model)
    actor = identity.authenticate(rt, os.environ.get(TOKEN_ENV))
    if as_person is not None and as_person != actor.person:
        raise UsageError(
            f"--as {as_person}, but {TOKEN_ENV} is {actor.person}'s token; a person decides "
            f"only as themselves: drop --as or use {as_person}'s own token"
        )
    # the account it ran from too: a later break-glass from it cannot be a second person
    return replace(actor, credential=f"{actor.credential} on {identity.cli_operator()}")


def optional_actor(rt: Runtime) -> Actor | None:
    """The token's person when ``PRODCONTROL_TOKEN`` is set (checked), else None."""
    text = os.environ.get(TOKEN_ENV)
    return identity.authenticate(rt, text) if text else None


def _model_of(get: Callable[[str], Gate | Finding], record_id: str) -> str | None:
    """The model a gate or finding is about (a break-glass is routed by it); None if unknown:
    the command itself then says the id is wrong."""
    try:
        return get(record_id).model
    except LookupError:
        return None


def gate_model(rt: Runtime, gate_id: str) -> str | None:
    return _model_of(rt.store.get_gate, gate_id)


def finding_model(rt: Runtime, finding_id: str) -> str | None:
    return _model_of(rt.store.get_finding, finding_id)


__all__ = [
    "AsOpt",
    "BreakGlassOpt",
    "BreakGlassReasonOpt",
    "ReasonOpt",
    "acting",
    "finding_model",
    "gate_model",
    "optional_actor",
]
