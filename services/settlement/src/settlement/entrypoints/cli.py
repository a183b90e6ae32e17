"""`sanalpos recon …`: reconciliation from the command line, straight against settlement's
database (SETTLEMENT_DATABASE_URL) through the same service layer as the ops API.

    sanalpos recon run [--date YYYY-MM-DD] [--merchant ID]     reconcile a date now (yesterday)
    sanalpos recon mismatches [--date D] [--merchant ID] [--kind K] [--limit N]
    sanalpos recon runs [--date D] [--merchant ID] [--limit N]

Output is JSON. Exit codes: 0 done (`run`: and no mismatch), 1 `run` found mismatches,
2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from sanalpos_common.db import create_pool
from settlement.adapters.reconciliation import ReconciliationStore
from settlement.config import SettlementSettings
from settlement.domain.reconciliation import MismatchKind
from settlement.service_layer.reconciliation import Reconciler


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanalpos recon", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    mismatches = commands.add_parser("mismatches")
    runs = commands.add_parser("runs")
    for sub in (run, mismatches, runs):
        sub.add_argument("--date", type=date.fromisoformat, default=None)
        sub.add_argument("--merchant", default=None)
    mismatches.add_argument("--kind", choices=[k.value for k in MismatchKind])
    for sub in (mismatches, runs):
        sub.add_argument("--limit", type=int, default=200)
    return parser


async def _main(args: argparse.Namespace) -> tuple[Any, int]:
    settings = SettlementSettings()
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        if args.command == "run":
            recon = Reconciler(pool, "settlement", time_zone=settings.recon_time_zone)
            day = args.date or recon.today() - timedelta(days=1)
            outcomes = await recon.run_for(day, args.merchant)
            found = sum(len(o.mismatches) for o in outcomes)
            result = {
                "date": day,
                "mismatch_count": found,
                "runs": [
                    {
                        "merchant_id": o.merchant_id,
                        "currency": o.currency,
                        "clearing_version": o.clearing_version,
                        "mismatches": [asdict(m) for m in o.mismatches],
                    }
                    for o in outcomes
                ],
            }
            return result, 1 if found else 0
        async with pool.acquire() as conn:
            store = ReconciliationStore(conn)
            if args.command == "mismatches":
                return await store.mismatches(args.date, args.merchant, args.kind, args.limit), 0
            return await store.runs(args.date, args.merchant, args.limit), 0
    finally:
        await pool.close()


def recon_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    result, code = asyncio.run(_main(args))
    print(json.dumps(result, default=str, indent=2))
    return code
