"""The chaos harness, small: about 1,000 payments while services are SIGKILLed and restarted
and the broker restarts once; every invariant must hold afterwards. It runs its own Kafka and
PostgreSQL (scripts/infra, a state folder and ports of its own) so the faults never touch the
suite's infrastructure. The full run is `make chaos` (docs/reliability.md)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys

from tests.integration.support import ROOT

PAYMENTS = 1000


def _free_block(size: int) -> int:
    """The first of `size` consecutive free loopback ports below the kernel's ephemeral range
    (a restarted process must find its port free again)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 32_000 - size)
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block")


def test_invariants_hold_after_kills_and_a_broker_restart() -> None:
    base = _free_block(20)
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KAFKA_BOOTSTRAP_SERVERS" and not k.endswith("_DATABASE_URL")
    }
    state = os.environ.get("SANALPOS_STATE_DIR", str(ROOT / ".state" / "test"))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "chaos.py"),
            *("--payments", str(PAYMENTS)),
            *("--kills", "5", "--broker-restarts", "1", "--postgres-restarts", "0"),
            *("--freeze-s", "0", "--concurrency", "12", "--drain-timeout", "300"),
            *("--state-dir", f"{state}-chaos"),
            *("--kafka-port", str(base), "--controller-port", str(base + 1)),
            *("--pg-port", str(base + 2), "--service-ports", str(base + 10)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = done.stdout
    assert done.returncode == 0, out[-6000:] + done.stderr[-3000:]
    assert f"payments planned {PAYMENTS}" in out
    assert "faults: SIGKILL 5, broker restarts 1" in out
    assert "BROKEN" not in out
    for figure in (
        "every acknowledged payment is final",
        "the ledger balances per currency",
        "statements close on the ledger",
        "replaying authorization's group from offset 0 changes no state",
        "replaying settlement's group from offset 0 changes no state",
        "dead-letter topics hold only the planted poison messages",
    ):
        assert f"[ok] {figure}" in out, out[-6000:]
