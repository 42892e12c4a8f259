"""The ``prodcontrol`` command. Each command group lives in its own module and registers here."""

from __future__ import annotations

import sys

from prodcontrol.cli import (
    action_cmds,
    catalog_cmds,
    check_cmd,
    db_cmds,
    demo_cmd,
    escalation_cmds,
    evidence_cmds,
    flow_cmds,
    gate_cmds,
    incident_cmds,
    init_cmd,
    report_cmds,
    review_cmds,
    serve_cmd,
    token_cmds,
    usecase_cmds,
    webhook_cmds,
)
from prodcontrol.cli.app import app, run

catalog_cmds.register(app)
db_cmds.register(app)
demo_cmd.register(app)
evidence_cmds.register(app)
serve_cmd.register(app)
report_cmds.register(app)
usecase_cmds.register(app)
review_cmds.register(app)
escalation_cmds.register(app)
check_cmd.register(app)
gate_cmds.register(app)
action_cmds.register(app)
flow_cmds.register(app)
token_cmds.register(app)
init_cmd.register(app)
webhook_cmds.register(app)
incident_cmds.register(app)


def main() -> None:
    """Console-script entry point: run the app and map errors to exit codes (DESIGN §7)."""
    sys.exit(run(sys.argv[1:]))


__all__ = ["app", "main"]
