"""`sanalpos fraud …`: manage fraud rules, lists, bands and reviews from the command line.

Straight against fraud's database (FRAUD_DATABASE_URL) through the same service-layer
functions as the admin API, so every change is validated, versioned and audited the same
way (and a review resolution goes out through the outbox).

    sanalpos fraud rules list [--enabled-only]
    sanalpos fraud rules create NAME --action allow|block|review|3ds --expr EXPRESSION [--description D]
    sanalpos fraud rules change NAME [--action A] [--expr E] [--description D]
    sanalpos fraud rules disable|enable NAME
    sanalpos fraud rules history [NAME]
    sanalpos fraud lists list
    sanalpos fraud lists create NAME --kind card|bin|ip|email|country
    sanalpos fraud lists entries NAME
    sanalpos fraud lists add|remove NAME VALUE [--note N]
    sanalpos fraud bands show|set MERCHANT_ID [--review-at N --decline-at N]
    sanalpos fraud reviews list [--limit N]
    sanalpos fraud reviews resolve PAYMENT_ID approve|decline [--note N]
    sanalpos fraud decision PAYMENT_ID
    sanalpos fraud train --data CSV|history --seed N --out FILE   (python -m fraud.model.train)

Every command takes --actor (default: $USER). Output is JSON. Exit codes: 0 done, 1 refused
(not found, conflict, invalid), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from fraud.config import FraudSettings
from fraud.domain.policy import Bands
from fraud.service_layer import policy_admin as admin
from fraud.service_layer import reviews
from fraud.service_layer.decisions import readable_decision
from sanalpos_common.schemas.events import ReviewDecision

Handler = Callable[[asyncpg.Pool, argparse.Namespace], Awaitable[Any]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanalpos fraud", description=__doc__.split("\n")[0])
    parser.add_argument("--actor", default=None, help="who is acting (default: $USER)")
    groups = parser.add_subparsers(dest="group", required=True)

    rules = groups.add_parser("rules").add_subparsers(dest="command", required=True)
    listed = rules.add_parser("list")
    listed.add_argument("--enabled-only", action="store_true")
    create = rules.add_parser("create")
    create.add_argument("name")
    create.add_argument("--action", required=True)
    create.add_argument("--expr", required=True)
    create.add_argument("--description")
    change = rules.add_parser("change")
    change.add_argument("name")
    change.add_argument("--action")
    change.add_argument("--expr")
    change.add_argument("--description")
    for toggle in ("disable", "enable"):
        rules.add_parser(toggle).add_argument("name")
    rules.add_parser("history").add_argument("name", nargs="?")

    lists = groups.add_parser("lists").add_subparsers(dest="command", required=True)
    lists.add_parser("list")
    new_list = lists.add_parser("create")
    new_list.add_argument("name")
    new_list.add_argument("--kind", required=True)
    lists.add_parser("entries").add_argument("name")
    for verb in ("add", "remove"):
        entry = lists.add_parser(verb)
        entry.add_argument("name")
        entry.add_argument("value")
        entry.add_argument("--note")

    bands = groups.add_parser("bands").add_subparsers(dest="command", required=True)
    bands.add_parser("show").add_argument("merchant_id")
    set_bands = bands.add_parser("set")
    set_bands.add_argument("merchant_id")
    set_bands.add_argument("--review-at", type=int, required=True)
    set_bands.add_argument("--decline-at", type=int, required=True)

    queue = groups.add_parser("reviews").add_subparsers(dest="command", required=True)
    queue.add_parser("list").add_argument("--limit", type=int, default=100)
    resolve = queue.add_parser("resolve")
    resolve.add_argument("payment_id", type=uuid.UUID)
    resolve.add_argument("decision", choices=[d.value for d in ReviewDecision])
    resolve.add_argument("--note")

    groups.add_parser("decision").add_argument("payment_id", type=uuid.UUID)
    return parser


def _who(args: argparse.Namespace) -> str:
    return str(args.actor or getpass.getuser() or "cli")


async def _rules(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    who = _who(args)
    if args.command == "list":
        return await admin.list_rules(pool, include_disabled=not args.enabled_only)
    if args.command == "create":
        return await admin.create_rule(
            pool, args.name, args.expr, args.action, args.description, who
        )
    if args.command == "history":
        return await admin.history(pool, "rule", args.name)
    change = admin.RuleChange(
        expression=getattr(args, "expr", None),
        action=getattr(args, "action", None),
        description=getattr(args, "description", None),
        enabled={"disable": False, "enable": True}.get(args.command),
    )
    return await admin.change_rule(pool, args.name, change, who)


async def _lists(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    who = _who(args)
    if args.command == "list":
        return await admin.lists_overview(pool)
    if args.command == "create":
        return await admin.create_list(pool, args.name, args.kind, who)
    if args.command == "entries":
        return await admin.list_entries(pool, args.name)
    if args.command == "add":
        return {"added": await admin.add_entry(pool, args.name, args.value, who, args.note)}
    await admin.remove_entry(pool, args.name, args.value, who)
    return {"removed": args.value}


async def _bands(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    if args.command == "show":
        settings = FraudSettings()
        default = Bands(settings.review_threshold, settings.decline_threshold)
        return await admin.get_bands(pool, args.merchant_id, default)
    return await admin.set_bands(
        pool, args.merchant_id, args.review_at, args.decline_at, _who(args)
    )


async def _reviews(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    if args.command == "list":
        return await reviews.pending(pool, args.limit)
    decision = ReviewDecision(args.decision)
    return await reviews.resolve(pool, args.payment_id, decision, args.note, _who(args))


async def _decision(pool: asyncpg.Pool, args: argparse.Namespace) -> Any:
    found = await readable_decision(pool, args.payment_id)
    if found is None:
        raise admin.NotFound(f"no fraud decision for payment {args.payment_id}")
    return found


HANDLERS: dict[str, Handler] = {
    "rules": _rules,
    "lists": _lists,
    "bands": _bands,
    "reviews": _reviews,
    "decision": _decision,
}


async def _run(args: argparse.Namespace) -> Any:
    settings = FraudSettings()
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2
    )
    try:
        return await HANDLERS[args.group](pool, args)
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["train"]:  # the model's own command line (fraud.model.train), no database
        from fraud.model.train import main as train

        return train(given[1:])
    try:
        args = _parser().parse_args(given)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    try:
        result = asyncio.run(_run(args))
    except admin.PolicyError as exc:
        print(json.dumps({"error": exc.message, "field": exc.field}), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0
