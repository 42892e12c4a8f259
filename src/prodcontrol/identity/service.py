"""Identity use cases: issue, list, revoke and check personal tokens; break glass; one credential
per person per gate.

Every channel ends in an :class:`Actor`: the person it proved, and the credential that proved
it (``token:<id>``, ``slack:<user>``, ``proxy:<person>``, ``airflow:<user>``; from the CLI
followed by `` on <os user>@<host>``, and ``break-glass on <os user>@<host>``). A gate counts
distinct people *and* distinct credentials: one credential cannot vote twice under two names,
and a break-glass from an account that already decided on the gate from the CLI is the same
voter.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from prodcontrol.control.ports import IdentityPorts
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.evidence.records import NotificationIn
from prodcontrol.identity.tokens import MalformedCredential, NewToken, PersonalToken, make_token
from prodcontrol.identity.tokens import matches as token_matches
from prodcontrol.identity.tokens import parse as parse_token

log = logging.getLogger(__name__)

TOKEN_ENV = "PRODCONTROL_TOKEN"
ADMIN_ROLE = "mlops_admin"
DEFAULT_DAYS = 90
MAX_DAYS = 366
HOW_TO = (
    f"set {TOKEN_ENV} to your personal token; an mlops_admin gives you one with "
    "`prodcontrol tokens issue YOUR-ID` (the first one: `prodcontrol tokens issue ADMIN-ID "
    "--bootstrap`). In an emergency without a token: --break-glass --as YOU --reason '...'"
)

Via = Literal["token", "slack", "proxy", "airflow", "break-glass"]


class NotAuthenticated(UsageError):
    """No credential, or one that is malformed, unknown, expired or revoked (exit 2)."""


@dataclass(frozen=True)
class Actor:
    person: str
    credential: str
    via: Via
    break_glass_reason: str | None = None


class _VerifiedCache:
    """scrypt is slow on purpose; a secret already checked in this process is not re-hashed.

    Revocation and expiry are read from the store on every call, only the hash is cached.
    """

    def __init__(self) -> None:
        self._ok: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def check(self, token: PersonalToken, secret: str) -> bool:
        key = (token.id, token.hash, hashlib.sha256(secret.encode()).hexdigest())
        with self._lock:
            if key in self._ok:
                return True
        ok = token_matches(token, secret)
        if ok:
            with self._lock:
                if len(self._ok) > 10_000:
                    self._ok.clear()
                self._ok.add(key)
        return ok


_verified = _VerifiedCache()


def authenticate(rt: IdentityPorts, text: str | None) -> Actor:
    """The person a personal token belongs to, or NotAuthenticated saying what is wrong."""
    if not text or not text.strip():
        raise NotAuthenticated(f"no personal token: {HOW_TO}")
    try:
        token_id, secret = parse_token(text)
    except MalformedCredential as exc:
        raise NotAuthenticated(f"{TOKEN_ENV}: {exc}; {HOW_TO}") from None
    token = rt.identity.get_token(token_id)
    if token is None or not _verified.check(token, secret):
        raise NotAuthenticated(f"the personal token {token_id} is not valid; {HOW_TO}")
    state = token.state(rt.clock.now())
    if state != "active":
        raise NotAuthenticated(
            f"the personal token {token_id} is {state}; ask an mlops_admin for a new one "
            f"(`prodcontrol tokens issue {token.person}`)"
        )
    if token.person not in rt.config.inventory.people:
        raise NotAuthenticated(
            f"the personal token {token_id} belongs to {token.person!r}, who is no longer in "
            "people.yaml"
        )
    return Actor(person=token.person, credential=f"token:{token.id}", via="token")


def is_admin(rt: IdentityPorts, person: str) -> bool:
    found = rt.config.inventory.people.get(person)
    return found is not None and ADMIN_ROLE in found.roles


def issue(
    rt: IdentityPorts,
    person: str,
    *,
    by: Actor | None,
    expires_days: int = DEFAULT_DAYS,
    bootstrap: bool = False,
) -> NewToken:
    """A new token for ``person``; ``by`` must be an mlops_admin, or ``bootstrap`` the first."""
    if person not in rt.config.inventory.people:
        known = ", ".join(sorted(rt.config.inventory.people))
        raise UsageError(f"unknown person {person!r}; people.yaml has: {known}")
    if not 1 <= expires_days <= MAX_DAYS:
        raise UsageError(f"--expires-days {expires_days}: give 1 to {MAX_DAYS} days")
    if bootstrap:
        if rt.identity.list_tokens():
            raise UsageError(
                "--bootstrap only issues the very first token; tokens exist already, so "
                f"issue with an mlops_admin's token in {TOKEN_ENV}"
            )
        if not is_admin(rt, person):
            raise UsageError(
                f"--bootstrap issues the first token to an {ADMIN_ROLE}; {person} does not "
                f"hold that role in people.yaml"
            )
        issued_by = "bootstrap"
    else:
        if by is None:
            raise NotAuthenticated(f"issuing a token needs an {ADMIN_ROLE}'s token: {HOW_TO}")
        if not is_admin(rt, by.person):
            raise DecisionRefused(
                f"{by.person} does not hold the {ADMIN_ROLE} role; only an {ADMIN_ROLE} "
                "issues tokens"
            )
        issued_by = by.person
    now = rt.clock.now()
    new = make_token(
        person, issued_by=issued_by, issued_at=now, expires_at=now + timedelta(days=expires_days)
    )
    rt.identity.add_token(new.stored)
    rt.store.record_event(
        "identity.token_issued",
        "token",
        new.stored.id,
        None,
        {"person": person, "issued_by": issued_by, "expires_at": new.stored.expires_at.isoformat()},
    )
    return new


def visible_tokens(rt: IdentityPorts, viewer: Actor) -> list[PersonalToken]:
    """An mlops_admin sees every token, anyone else their own."""
    tokens = rt.identity.list_tokens()
    if is_admin(rt, viewer.person):
        return tokens
    return [t for t in tokens if t.person == viewer.person]


def revoke(rt: IdentityPorts, token_id: str, *, by: Actor) -> PersonalToken:
    token = rt.identity.get_token(token_id)
    if token is None:
        raise UsageError(f"no token {token_id!r}; see `prodcontrol tokens list`")
    if token.person != by.person and not is_admin(rt, by.person):
        raise DecisionRefused(
            f"{by.person} may revoke only their own tokens; {token_id} is {token.person}'s"
        )
    revoked = rt.identity.revoke_token(token_id, by.person, rt.clock.now())
    assert revoked is not None
    rt.store.record_event(
        "identity.token_revoked", "token", token_id, None, {"person": token.person, "by": by.person}
    )
    return revoked


def break_glass(
    rt: IdentityPorts, person: str | None, reason: str, *, command: str, model: str | None
) -> Actor:
    """An emergency actor without a token: recorded and told to the risk channel at once."""
    if not person:
        raise UsageError("--break-glass needs --as YOUR-ID: say who you are")
    if person not in rt.config.inventory.people:
        raise UsageError(f"--as {person!r}: not a person in people.yaml")
    if not reason.strip():
        raise UsageError("--break-glass needs --reason '...': why there is no token")
    operator = cli_operator()
    credential = f"break-glass on {operator}"
    event = rt.store.record_event(
        "identity.break_glass",
        "person",
        person,
        model,
        {"person": person, "operator": operator, "command": command, "reason": reason},
    )
    channels = _risk_channels(rt, model)
    rt.store.enqueue(
        [
            NotificationIn(
                idempotency_key=f"break-glass:{event.seq}:{channel}",
                recipient_kind="channel",
                recipient=channel,
                payload={
                    "kind": "break_glass",
                    "text": f"BREAK-GLASS: {person} ran `{command}` without a personal token "
                    f"(operator {operator}). Reason: {reason}",
                    "model": model,
                },
            )
            for channel in channels
        ]
    )
    log.warning("break-glass by %s (%s): %s", person, operator, reason)
    return Actor(person=person, credential=credential, via="break-glass", break_glass_reason=reason)


def _risk_channels(rt: IdentityPorts, model: str | None) -> list[str]:
    if model is not None and model in rt.config.inventory.models:
        return [rt.config.tier(rt.config.model(model)).risk_channel]
    return sorted({t.risk_channel for t in rt.config.catalog.tiers.values()})


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# ---------------------------------------------------------------- one credential, one vote


def cli_operator() -> str:
    """The OS account and host a CLI command runs from."""
    return f"{_os_user()}@{socket.gethostname()}"


def _split(credential: str) -> tuple[str, str]:
    primary, _, operator = credential.partition(" on ")
    return primary, operator


def _same_voter(used: str, offered: str) -> bool:
    """One credential; or a break-glass from the account that already decided from the CLI."""
    (used_primary, used_op), (primary, operator) = _split(used), _split(offered)
    if used_primary == primary:
        return True
    glass = "break-glass" in (used_primary, primary)
    return glass and bool(operator) and operator == used_op


def check_credential(rt: IdentityPorts, gate_id: str, person: str, credential: str) -> str | None:
    """Why ``credential`` may not decide for ``person`` on the gate, or None when it may."""
    for other, used in rt.identity.credentials_on(gate_id):
        if other != person and _same_voter(used, credential):
            return (
                f"the credential {credential} already decided on this gate as {other}; one "
                "credential is one vote, so a second person must decide with their own"
            )
    return None


def note_credential(
    rt: IdentityPorts, gate_id: str, person: str, credential: str, at: datetime
) -> None:
    rt.identity.note_credential(gate_id, person, credential, at)


# ---------------------------------------------------------------- Airflow users


def airflow_actor(rt: IdentityPorts, username: str | None, email: str | None = None) -> Actor:
    """The person an Airflow user is (HITL answers): exact id or exact e-mail in people.yaml.

    ``username`` may be a person id or an e-mail (Airflow's auth managers use either); ``email``
    is the user's e-mail when the auth manager knows it. Both must point at the same person;
    no match, or two different people, is NotAuthenticated: such an answer decides nothing.
    """
    people = rt.config.inventory.people
    by_email = {p.email: p.id for p in people.values() if p.email}
    found = set()
    for value in (username, email):
        if value:
            if value in people:
                found.add(value)
            if value in by_email:
                found.add(by_email[value])
    if len(found) != 1:
        shown = ", ".join(f"{k}={v!r}" for k, v in (("username", username), ("email", email)) if v)
        why = "matches no one" if not found else f"matches {sorted(found)}"
        raise NotAuthenticated(
            f"Airflow user ({shown or 'anonymous'}) {why} in people.yaml: give the Airflow user "
            "the person's exact id or e-mail from people.yaml"
        )
    person = found.pop()
    return Actor(person=person, credential=f"airflow:{username or email}", via="airflow")
