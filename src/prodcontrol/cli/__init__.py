"""The ``prodcontrol`` command. Each command group lives in its own module and registers here."""

from __future__ import annotations

import sys

from prodcontrol.cli import catalog_cmds, db_cmds, demo_cmd
from prodcontrol.cli.app import app, run

catalog_cmds.register(app)
db_cmds.register(app)
demo_cmd.register(app)


def main() -> None:
    """Console-script entry point: run the app and map errors to exit codes (DESIGN §7)."""
    sys.exit(run(sys.argv[1:]))


__all__ = ["app", "main"]
