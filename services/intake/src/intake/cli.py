"""`sanalpos merchants …` and `sanalpos bins …`: the operator's commands, straight against
intake's database (INTAKE_DATABASE_URL) through the same service-layer functions as the admin
API, so merchant changes are announced through the outbox just the same.

    sanalpos merchants create --name NAME [--id mer_x] [--currency TRY] [--time-zone Z]
                              [--cutoff HH:MM] [--fee-plan P] [--max-installments N]
                              [--payout-delay-days N] [--always-three-d-secure]
                              [--mode test|live] [--rate R --burst B]
    sanalpos merchants show ID
    sanalpos merchants update ID [--name …] [--currency …] [--time-zone …] [--cutoff …]
                                 [--fee-plan …] [--max-installments …]
                                 [--payout-delay-days …]
                                 [--always-three-d-secure | --no-always-three-d-secure]
    sanalpos merchants list [--limit N] [--after ID]
    sanalpos merchants keys create ID [--mode test|live] [--rate R --burst B]
    sanalpos merchants keys rotate ID KEY_ID [--grace SECONDS]
    sanalpos merchants keys revoke ID KEY_ID
    sanalpos merchants keys list ID
    sanalpos bins import FILE.csv
    sanalpos bins show BIN

Output is JSON. A new key is printed once; only its prefix is kept. Exit codes: 0 done,
1 refused (not found, exists, invalid), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from intake.adapters.bins import OPERATOR, BinRepository, read_bin_file
from intake.domain.bins import BadBinRow, describe_bin, is_bin
from intake.domain.merchant import InvalidMerchantField
from intake.domain.rate_limit import Limit
from intake.service_layer import merchants as service
from sanalpos_common.business_day import DEFAULT_CUTOFF, DEFAULT_TIME_ZONE
from sanalpos_common.fees import DEFAULT_FEE_PLAN

Handler = Callable[[asyncpg.Pool, argparse.Namespace], Awaitable[Any]]


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _limit(args: argparse.Namespace) -> Limit | None:
    if args.rate is None:
        return None
    return Limit(args.rate, args.burst or max(1, int(args.rate)))


def _profile_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def option(flag: str, dest: str, default: Any, kind: type = str) -> None:
        parser.add_argument(flag, dest=dest, type=kind, default=default if defaults else None)

    option("--currency", "settlement_currency", "TRY")
    option("--time-zone", "time_zone", DEFAULT_TIME_ZONE)
    option("--cutoff", "cutoff_time", DEFAULT_CUTOFF.strftime("%H:%M"))
    option("--fee-plan", "fee_plan", DEFAULT_FEE_PLAN)
    option("--max-installments", "max_installments", 12, int)
    option("--payout-delay-days", "payout_delay_days", 1, int)
    option("--payout-plan", "payout_plan", "batch")  # batch or per_installment
    parser.add_argument(  # 3-D Secure
        "--always-three-d-secure",
        dest="always_three_d_secure",
        action=argparse.BooleanOptionalAction,
        default=False if defaults else None,
        help="authenticate every payment of the merchant with 3-D Secure",
    )


def _rate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, help="this key's requests per second")
    parser.add_argument("--burst", type=int, help="this key's burst (default: the rate)")


async def _create(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    new = service.NewMerchant(
        name=args.name,
        id=args.id,
        settlement_currency=args.settlement_currency,
        time_zone=args.time_zone,
        cutoff_time=args.cutoff_time,
        fee_plan=args.fee_plan,
        max_installments=args.max_installments,
        payout_delay_days=args.payout_delay_days,
        payout_plan=args.payout_plan,
        always_three_d_secure=args.always_three_d_secure,
        mode=args.mode,
        key_limit=_limit(args),
    )
    created = await service.create_merchant(pool, new)
    return {**created.merchant, "api_key": created.issued.api_key, "key": created.issued.key}


async def _update(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    fields = ("name", "settlement_currency", "time_zone", "cutoff_time", "fee_plan", "payout_plan")
    numbers = ("max_installments", "payout_delay_days", "always_three_d_secure")
    changes = {f: getattr(args, f) for f in (*fields, *numbers)}
    return await service.update_merchant(
        pool, args.merchant_id, {k: v for k, v in changes.items() if v is not None}
    )


async def _list(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    page, next_cursor = await service.list_merchants(pool, args.limit, args.after)
    return {"data": page, "next_cursor": next_cursor}


async def _keys(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    if args.keys_command == "list":
        return {"data": await service.list_keys(pool, args.merchant_id)}
    if args.keys_command == "create":
        issued = await service.create_key(pool, args.merchant_id, args.mode, _limit(args))
        return {**issued.key, "api_key": issued.api_key}
    key_id = uuid.UUID(args.key_id)
    if args.keys_command == "revoke":
        return (await service.revoke_key(pool, args.merchant_id, key_id)).key
    grace = timedelta(seconds=args.grace)
    issued, previous = await service.rotate_key(pool, args.merchant_id, key_id, grace)
    return {"key": {**issued.key, "api_key": issued.api_key}, "previous": previous.key}


def merchants_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanalpos merchants")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create", help="create a merchant and its first API key (shown once)")
    p.add_argument("--name", required=True)
    p.add_argument("--id", help="mer_…; generated when absent")
    p.add_argument("--mode", choices=["test", "live"], default="test")
    _profile_options(p, defaults=True)
    _rate_options(p)
    p.set_defaults(handler=_create)
    p = sub.add_parser("show", help="one merchant's record")
    p.add_argument("merchant_id")
    p.set_defaults(handler=lambda pool, a: service.get_merchant(pool, a.merchant_id))
    p = sub.add_parser("update", help="change fields; a change makes a new version")
    p.add_argument("merchant_id")
    p.add_argument("--name")
    _profile_options(p, defaults=False)
    p.set_defaults(handler=_update)
    p = sub.add_parser("list", help="merchants in id order")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--after", help="the last id of the previous page")
    p.set_defaults(handler=_list)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", required=True
    )
    p = keys.add_parser("create", help="a new key (shown once)")
    p.add_argument("merchant_id")
    p.add_argument("--mode", choices=["test", "live"], default="test")
    _rate_options(p)
    p = keys.add_parser("rotate", help="a new key replaces KEY_ID (revoked after --grace)")
    p.add_argument("merchant_id")
    p.add_argument("key_id")
    p.add_argument("--grace", type=int, default=0, help="seconds the old key keeps working")
    p = keys.add_parser("revoke", help="stop a key now")
    p.add_argument("merchant_id")
    p.add_argument("key_id")
    p = keys.add_parser("list", help="keys by prefix (never the key)")
    p.add_argument("merchant_id")
    for choice in keys.choices.values():
        choice.set_defaults(handler=_keys)
    return parser


async def _import_bins(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    records = read_bin_file(Path(args.file))
    written = await BinRepository(pool).upsert(records, OPERATOR)
    return {"read": len(records), "written": written}


async def _show_bin(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    if not is_bin(args.bin):
        raise ValueError("a BIN is 6 or 8 digits")
    info = describe_bin(args.bin, await BinRepository(pool).find(args.bin))
    return {**asdict(info), "card_type": info.card_type.value}


def bins_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanalpos bins")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("import", help="add or replace BIN rows from a CSV file (see data/bins.csv)")
    p.add_argument("file")
    p.set_defaults(handler=_import_bins)
    p = sub.add_parser("show", help="what the table says about a BIN")
    p.add_argument("bin")
    p.set_defaults(handler=_show_bin)
    return parser


async def _run(handler: Handler, args: argparse.Namespace, database_url: str | None) -> Any:
    if database_url is None:
        from intake.config import IntakeSettings

        database_url = IntakeSettings().database_url.get_secret_value()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        return await handler(pool, args)
    finally:
        await pool.close()


REFUSALS = (
    service.MerchantExists,
    service.MerchantNotFound,
    service.KeyNotFound,
    InvalidMerchantField,
    BadBinRow,
    ValueError,
    OSError,
)


def _main(parser: argparse.ArgumentParser, argv: Sequence[str], database_url: str | None) -> int:
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        _print(asyncio.run(_run(args.handler, args, database_url)))
    except REFUSALS as exc:
        kind = type(exc).__name__
        print(f"error: {kind}: {exc}", file=sys.stderr)
        return 1
    return 0


def merchants_main(argv: Sequence[str], database_url: str | None = None) -> int:
    """Entry point `sanalpos merchants` (group sanalpos.commands)."""
    return _main(merchants_parser(), argv, database_url)


def bins_main(argv: Sequence[str], database_url: str | None = None) -> int:
    """Entry point `sanalpos bins` (group sanalpos.commands)."""
    return _main(bins_parser(), argv, database_url)
