"""``tokens issue|list|revoke``: personal tokens, the credential of every CLI decision."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import optional_actor
from prodcontrol.cli.output import console, emit, emit_object
from prodcontrol.identity import service as identity
from prodcontrol.identity.service import TOKEN_ENV, NotAuthenticated
from prodcontrol.identity.tokens import PersonalToken
from prodcontrol.runtime import Runtime

tokens_app = typer.Typer(
    help=f"Personal tokens: set {TOKEN_ENV} to yours and every decision is made as you.",
    no_args_is_help=True,
)


def _row(rt: Runtime, token: PersonalToken) -> dict[str, object]:
    return {
        "token": token.id,
        "person": token.person,
        "state": token.state(rt.clock.now()),
        "issued_at": token.issued_at.isoformat(timespec="minutes"),
        "expires_at": token.expires_at.isoformat(timespec="minutes"),
        "issued_by": token.issued_by,
        "revoked_by": token.revoked_by,
    }


@tokens_app.command("issue")
def issue(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    person: Annotated[str, typer.Argument(help="The person id in people.yaml.")],
    expires_days: Annotated[
        int, typer.Option("--expires-days", help="Valid for N days (1-366).")
    ] = identity.DEFAULT_DAYS,
    bootstrap: Annotated[
        bool,
        typer.Option("--bootstrap", help="The very first token, for an mlops_admin, no token."),
    ] = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Issue a token for PERSON (needs an mlops_admin's token); it is printed once only."""
    rt = runtime(catalog, inventory)
    by = None if bootstrap else optional_actor(rt)
    new = identity.issue(rt, person, by=by, expires_days=expires_days, bootstrap=bootstrap)
    row = _row(rt, new.stored) | {"secret": new.text}
    if as_json:
        emit_object(row, as_json=True)
        return
    console.print(f"token {new.stored.id} for {person}, valid until {row['expires_at']}:")
    console.print(new.text, highlight=False, soft_wrap=True)
    console.print(
        f"It is shown only now: give it to {person}, who sets {TOKEN_ENV} to it. "
        f"Revoke it with `prodcontrol tokens revoke {new.stored.id}`."
    )


def _viewer(rt: Runtime) -> identity.Actor:
    actor = optional_actor(rt)
    if actor is None:
        raise NotAuthenticated(f"listing or revoking tokens needs your token: {identity.HOW_TO}")
    return actor


@tokens_app.command("list")
def list_tokens(
    as_json: JsonOpt = False, catalog: CatalogOpt = None, inventory: InventoryOpt = None
) -> None:
    """Tokens (never their secrets): every one for an mlops_admin, your own otherwise."""
    rt = runtime(catalog, inventory)
    rows = [_row(rt, t) for t in identity.visible_tokens(rt, _viewer(rt))]
    emit(rows, as_json=as_json, title="Personal tokens")


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (see `tokens list`).")],
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Revoke a token now (your own, or any as an mlops_admin)."""
    rt = runtime(catalog, inventory)
    revoked = identity.revoke(rt, token_id, by=_viewer(rt))
    emit_object(_row(rt, revoked), as_json=as_json, title="Token revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")
