"""``make demo`` end to end: the installed script tells the whole story on embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _demo(state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRODCONTROL_", "PREFECT_"))}
    env.update(PRODCONTROL_STATE_DIR=str(state), COLUMNS="200")
    return subprocess.run(
        [str(Path(sys.executable).parent / "prodcontrol"), "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@pytest.mark.timeout(1200)  # the default 30 days of history run the real loop 90 times
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    result = _demo(tmp_path / "state")
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    # the last 30 days first, on a simulated clock, decided in time: no alias moved there
    assert "The last 30 days, on a simulated clock" in out
    assert "90 scheduled runs over 30 days" in out and "0 gate(s) timed out" in out
    assert "churn-classifier v2 (low tier): 0 finding(s)" in out
    assert "waiver" in out and "credit-limit-regressor" in out
    assert "refused chen: separation of duties" in out
    assert "approved by dana (1 of 2)" in out
    assert "fraud-detector@champion: version 2 -> version 1 (rolled back)" in out
    assert "evidence intact" in out
    assert "--- to @" in out  # the outbox printed what owners would get in Slack
    # the high tier's gate exists before its first messages: dana may approve from step 0
    first = out[out.index("--- to @dana") : out.index("4. Medium tier")]
    assert "fraud-detector" in first and "[Approve] [Reject]" in first
    assert (tmp_path / "state" / "mlartifacts").is_dir()  # MLflow artifacts stay in the state dir
    assert not (ROOT / "mlruns").exists()


def test_demo_refuses_a_state_dir_it_did_not_create(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "evidence.db").write_text("someone's real evidence")
    result = _demo(state)
    assert result.returncode == 2
    assert "did not create" in result.stderr
    assert (state / "evidence.db").read_text() == "someone's real evidence"
