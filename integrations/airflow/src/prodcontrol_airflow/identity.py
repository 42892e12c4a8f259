"""Who answered in Airflow: the Airflow user mapped to a person in people.yaml.

The human-in-the-loop operators (``HITLOperator``/``ApprovalOperator``) tell who responded;
:func:`person_for_user` turns that user into the :class:`~prodcontrol.identity.service.Actor`
that :func:`prodcontrol.control.gates.decisions.decide` takes (``person=actor.person``,
``credential=actor.credential``, ``channel="airflow"``). A user who matches no one, or two
people, decides nothing.
"""

from __future__ import annotations

from typing import Any

from prodcontrol.identity.service import Actor, NotAuthenticated, airflow_actor
from prodcontrol.runtime import Runtime

__all__ = ["NotAuthenticated", "person_for_user"]


def person_for_user(rt: Runtime, user: Any) -> Actor:
    """``user``: a mapping or object with ``username``/``name``/``id`` and maybe ``email``."""

    def field(*names: str) -> str | None:
        for name in names:
            value = user.get(name) if isinstance(user, dict) else getattr(user, name, None)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    return airflow_actor(rt, field("username", "name", "id", "user_id"), field("email"))
