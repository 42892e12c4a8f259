"""One exception hierarchy; every message says what to do next.

Exit codes (DESIGN §7): 0 ok, 1 controls failed, 2 usage or configuration error,
3 an outside system was unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_CONTROLS_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3


class ProdControlError(Exception):
    """Base of every error prodcontrol raises on purpose."""

    exit_code = EXIT_CONFIG


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a file the user wrote: ``file:line: field: message``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(ProdControlError):
    """The catalog, inventory or settings are wrong; carries every problem found, not the first."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class UsageError(ProdControlError):
    """The command was called in a way that cannot work (unknown model, bad option value)."""

    exit_code = EXIT_CONFIG


class UnreachableError(ProdControlError):
    """An outside system (MLflow, a database, Slack, a data source) did not answer."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, system: str, target: str, detail: str, hint: str = "") -> None:
        self.system, self.target, self.detail = system, target, detail
        message = f"{system} at {target} is unreachable: {detail}"
        super().__init__(message + (f". {hint}" if hint else ""))


class DecisionRefused(ProdControlError):
    """A decision on a gate was refused by the rules (right, separation of duties, closed gate)."""

    exit_code = EXIT_CONFIG


class StoreConflict(ProdControlError):
    """A concurrent writer changed the record first; re-read and decide again."""

    exit_code = EXIT_CONFIG
