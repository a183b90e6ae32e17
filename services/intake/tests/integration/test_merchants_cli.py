"""`sanalpos merchants …` and `sanalpos bins …`, run in-process through the `sanalpos` entry
point against the real intake database (INTAKE_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from intake.bootstrap import MIGRATIONS
from sanalpos_common import topics
from sanalpos_common.cli import main as sanalpos
from sanalpos_common.db import migrate
from sanalpos_common.schemas.codec import decode
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE
from sanalpos_common.settings import local_database_url

URL = os.environ.get("INTAKE_DATABASE_URL", local_database_url("intake"))


async def _query(sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(URL)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def query(sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_query(sql, *args))


@pytest.fixture(scope="module", autouse=True)
def migrated() -> None:
    async def run() -> None:
        pool = await asyncpg.create_pool(URL, min_size=1, max_size=1)
        assert pool is not None
        try:
            await migrate(pool, "intake", MIGRATIONS)
        finally:
            await pool.close()

    asyncio.run(run())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = sanalpos(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def announced_versions(merchant_id: str) -> list[tuple[int, str]]:
    rows = query(
        "SELECT payload FROM outbox WHERE topic = $1 AND message_key = $2 ORDER BY id",
        topics.MERCHANT_UPDATED,
        str(uuid.uuid5(MERCHANT_NAMESPACE, merchant_id)),
    )
    events = [decode(topics.MERCHANT_UPDATED, bytes(r["payload"])).payload for r in rows]
    return [(e.version, e.cutoff_time.strftime("%H:%M")) for e in events]


def test_merchant_lifecycle_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    merchant_id = f"mer_cli_{uuid.uuid4().hex[:8]}"
    code, created, _ = run(
        capsys, "merchants", "create", "--name", "CLI Shop", "--id", merchant_id,
        "--time-zone", "Europe/Istanbul", "--cutoff", "22:00", "--fee-plan", "volume",
        "--max-installments", "9", "--mode", "live", "--rate", "20", "--burst", "40",
    )  # fmt: skip
    assert code == 0
    assert created["api_key"].startswith("sk_live_")
    assert created["key"]["rate_limit"] == {"per_second": 20.0, "burst": 40}
    [stored] = query("SELECT key_hash, prefix FROM api_keys WHERE merchant_id = $1", merchant_id)
    assert stored["key_hash"] != created["api_key"] and created["api_key"] not in stored["key_hash"]

    code, shown, _ = run(capsys, "merchants", "show", merchant_id)
    assert (code, shown["cutoff_time"], shown["max_installments"]) == (0, "22:00", 9)
    assert "api_key" not in shown

    code, updated, _ = run(capsys, "merchants", "update", merchant_id, "--cutoff", "20:30")
    assert (code, updated["version"], updated["cutoff_time"]) == (0, 2, "20:30")
    assert announced_versions(merchant_id) == [(1, "22:00"), (2, "20:30")]

    code, listed, _ = run(capsys, "merchants", "list", "--limit", "100")
    assert code == 0 and isinstance(listed["data"], list)


def test_keys_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, created, _ = run(capsys, "merchants", "create", "--name", "Key Shop")
    merchant_id, first = created["id"], created["key"]["id"]

    code, extra, _ = run(capsys, "merchants", "keys", "create", merchant_id)
    assert code == 0 and extra["api_key"].startswith("sk_test_")

    code, rotated, _ = run(capsys, "merchants", "keys", "rotate", merchant_id, first)
    assert code == 0 and rotated["previous"]["active"] is False
    assert rotated["key"]["api_key"] not in (created["api_key"], extra["api_key"])

    code, revoked, _ = run(capsys, "merchants", "keys", "revoke", merchant_id, extra["id"])
    assert code == 0 and revoked["active"] is False

    code, keys, _ = run(capsys, "merchants", "keys", "list", merchant_id)
    assert code == 0
    assert [k["active"] for k in keys["data"]].count(True) == 1
    printed = json.dumps(keys)
    for secret in (created["api_key"], extra["api_key"], rotated["key"]["api_key"]):
        assert secret not in printed
    assert announced_versions(merchant_id) == [(1, "23:59")]  # keys do not change the record


@pytest.mark.parametrize(
    "argv",
    [
        ("merchants", "show", "mer_nobody_here"),
        ("merchants", "update", "mer_nobody_here", "--name", "x"),
        ("merchants", "create", "--name", "Bad", "--time-zone", "Mars/Base"),
        ("merchants", "create", "--name", "Bad", "--fee-plan", "gold"),
        ("merchants", "create", "--name", "Bad", "--cutoff", "25:00"),
        ("merchants", "keys", "revoke", "mer_nobody_here", str(uuid.uuid4())),
    ],
)
def test_refusals_exit_1_with_a_reason(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.startswith("error: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert sanalpos(["merchants", "frobnicate"]) == 2
    assert sanalpos(["merchants", "keys", "rotate"]) == 2
    capsys.readouterr()


def test_bins_import_and_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prefix = f"97929{uuid.uuid4().int % 1000:03d}"  # the seed has no 97929xxx rows
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text(
        "# operator's own rows\n"
        "prefix,scheme,card_type,issuer,programme,country,max_installments\n"
        f"{prefix},troy,credit,Operator Bank,Operator Card,TR,4\n",
        encoding="utf-8",
    )
    code, imported, _ = run(capsys, "bins", "import", str(csv_file))
    assert (code, imported) == (0, {"read": 1, "written": 1})
    code, shown, _ = run(capsys, "bins", "show", prefix)
    assert (shown["issuer"], shown["card_type"], shown["programme_max_installments"]) == (
        "Operator Bank",
        "credit",
        4,
    )
    [row] = query("SELECT source FROM bins WHERE prefix = $1", prefix)
    assert row["source"] == "operator"

    bad = tmp_path / "bad.csv"
    bad.write_text("prefix,scheme,card_type\n12345,visa,credit\n", encoding="utf-8")
    code, _, err = run(capsys, "bins", "import", str(bad))
    assert code == 1 and "line 2: prefix" in err


def test_always_three_d_secure_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    merchant_id = f"mer_cli_{uuid.uuid4().hex[:8]}"
    code, created, _ = run(
        capsys, "merchants", "create", "--name", "3DS Shop", "--id", merchant_id,
        "--always-three-d-secure",
    )  # fmt: skip
    assert (code, created["always_three_d_secure"]) == (0, True)
    code, untouched, _ = run(capsys, "merchants", "update", merchant_id, "--cutoff", "20:30")
    assert (code, untouched["always_three_d_secure"]) == (0, True)
    code, updated, _ = run(capsys, "merchants", "update", merchant_id, "--no-always-three-d-secure")
    assert (code, updated["always_three_d_secure"], updated["version"]) == (0, False, 3)
    code, plain, _ = run(capsys, "merchants", "create", "--name", "Plain Shop")
    assert (code, plain["always_three_d_secure"]) == (0, False)
