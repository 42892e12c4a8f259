"""Personal tokens for tests: the first mlops_admin bootstraps, then issues everyone else's."""

from __future__ import annotations

from prodcontrol.identity import service as identity
from prodcontrol.runtime import Runtime


class TokenBook:
    """Issues (once) and remembers each person's token text for one database."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._texts: dict[str, str] = {}
        self._admin: identity.Actor | None = None

    def admin(self) -> identity.Actor:
        if self._admin is None:
            people = self.rt.config.inventory.people.values()
            admin = next(p.id for p in people if identity.ADMIN_ROLE in p.roles)
            if self.rt.identity.list_tokens():
                raise AssertionError("TokenBook bootstraps a database without tokens")
            new = identity.issue(self.rt, admin, by=None, bootstrap=True)
            self._texts[admin] = new.text
            self._admin = identity.authenticate(self.rt, new.text)
        return self._admin

    def token(self, person: str) -> str:
        admin = self.admin()
        if person not in self._texts:
            self._texts[person] = identity.issue(self.rt, person, by=admin).text
        return self._texts[person]

    def actor(self, person: str) -> identity.Actor:
        return identity.authenticate(self.rt, self.token(person))
