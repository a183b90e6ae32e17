"""`make fraud-eval` end to end on a slice of the labeled file: the harness starts its own
services (on free ports, against the test broker and databases), replays the rows through
intake's HTTP API with their original timestamps, collects every payment.scored from Kafka,
prints the metrics and writes the PNG with the ROC and precision-recall curves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fraud.model.dataset import default_data_path
from sanalpos_common.testing import free_port
from tests.integration.support import ROOT

ROWS = 300
SERVICES = ("INTAKE", "FRAUD", "AUTHORIZATION", "SETTLEMENT", "NOTIFICATION")


def test_a_slice_replays_through_the_system_and_prints_the_metrics(
    endpoints: dict[str, str], tmp_path: Path
) -> None:
    png = tmp_path / "curves.png"
    env = {**os.environ, **endpoints}
    env.update({f"{service}_HTTP_PORT": str(free_port()) for service in SERVICES})
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "fraud_eval.py"),
            "--data",
            str(default_data_path()),
            "--limit",
            str(ROWS),
            "--png",
            str(png),
            "--timeout",
            "300",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert f"{ROWS} payments" in out
    assert re.search(r"ROC AUC\s+0\.\d{4}|ROC AUC\s+1\.0000", out), out
    for label in ("average precision", "recall at a 1% review rate", "decline band: precision"):
        assert label in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the harness stopped the services it started (their ports are free again)
    assert "intake         stopped" in out
