"""The promise, broken the way operators break it and checked per message against the sandbox's
submission log (a smaller run of ``benchmarks/chaos.py``, which says what is checked)."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.chaos


def chaos(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "verdict.json"
    done = subprocess.run([PYTHON, "-m", "benchmarks.chaos", *args, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=420)
    print(done.stdout[-3000:], done.stderr[-3000:])
    [verdict] = json.loads(out.read_text())
    return verdict


def test_kill_9_of_workers_and_a_flush_inside_a_lease_lose_nothing_and_double_only_the_ambiguous(tmp_path):
    verdict = chaos(tmp_path, "--kind", "kills", "--messages", "300")

    assert verdict["statuses"] == {"delivered": 300}
    assert (verdict["lost"], verdict["unexplained_copies"], verdict["over_six_attempts"]) == (0, 0, 0)
    assert (verdict["sent_after_final"], verdict["false_finals"]) == (0, 0)
    assert verdict["unknown_outcomes"] <= verdict["in_flight_at_kills"]
    assert verdict["refused"] > 0, "the run met faults"
    assert verdict["ok"]


@pytest.mark.skipif(
    not (glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")),
    reason="needs PostgreSQL's initdb and pg_ctl to run a cluster of its own (Debian: postgresql)",
)
def test_a_database_outage_with_a_redis_restart_inside_it_loses_nothing_and_sending_resumes_at_once(tmp_path):
    verdict = chaos(tmp_path, "--kind", "outage", "--messages", "300", "--outage", "10")

    assert verdict["statuses"] == {"delivered": 300}
    assert (verdict["lost"], verdict["unexplained_copies"], verdict["unknown_outcomes"], verdict["sent_after_final"]) == (0, 0, 0, 0)
    assert verdict["resumed_after_redis"] is not None and verdict["resumed_after_redis"] < 1.5
    assert verdict["resumed_after_database"] is not None and verdict["resumed_after_database"] < 1.5
    assert verdict["ok"]
