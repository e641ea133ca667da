"""The chaos script, once, in the suite: 5,000 subscribers while real workers are SIGKILLed and
the mail server stops. The count must hold: nobody twice, nobody lost without a trace."""

import json
import subprocess
import sys

import pytest

from tests.worker import ROOT

SUBSCRIBERS = 5000


@pytest.mark.slow
@pytest.mark.worker
def test_kills_and_an_outage_lose_nothing_silently_and_send_nothing_twice():
    process = subprocess.run(
        [
            sys.executable,
            "benchmarks/chaos.py",
            "--runs",
            "1",
            "--subscribers",
            str(SUBSCRIBERS),
            "--json",
            "--db-name",
            "chaos-test",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    print(result)
    assert result["kills"] == 4
    assert result["duplicates"] == 0
    assert result["missing_silently"] == 0
    assert result["all_rows_finished"] is True
    # Everyone got the email, except the few a killed worker held: those are marked, not lost.
    assert result["distinct_recipients"] + result["missing_marked_unknown"] == SUBSCRIBERS
    assert result["missing_marked_unknown"] <= 4 * 10  # at most one claim per killed worker
