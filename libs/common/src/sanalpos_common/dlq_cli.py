"""`sanalpos dlq list|show|replay|purge|history`: dead letters as an operations tool.

    sanalpos dlq list    --service settlement            unhandled records: age, reason, origin
    sanalpos dlq show    --service settlement --ref 0:12 one record in full (headers, value)
    sanalpos dlq replay  --service settlement --ref 0:12 [--ref 1:3 ...]  back to its topic
    sanalpos dlq replay  --service settlement --reason-contains "fee plan"  every match
    sanalpos dlq purge   --service settlement --all      mark handled without replaying
    sanalpos dlq history --service settlement            who replayed or purged what, when

Selectors (replay, purge, show; all given must match): --ref PARTITION:OFFSET, --message-id,
--key, --reason-contains, --original-topic, or --all. `--consumer NAME` picks one consumer's
dead-letter topic (dlq.NAME.v1) instead of a service's. The broker is KAFKA_BOOTSTRAP_SERVERS
(or --bootstrap). Details: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from sanalpos_common.dlq import (
    SERVICE_CONSUMERS,
    DeadLetter,
    DeadLetterOps,
    Selection,
    consumers_of,
    default_operator,
)


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sanalpos dlq",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "show", "replay", "purge", "history"):
        sub = commands.add_parser(name)
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--service", choices=sorted(SERVICE_CONSUMERS))
        where.add_argument("--consumer", help="one consumer's dead letters: dlq.<consumer>.v1")
        sub.add_argument(
            "--bootstrap",
            default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"),
        )
        if name in {"list", "show", "replay", "purge"}:
            sub.add_argument("--ref", action="append", default=[], help="PARTITION:OFFSET")
            sub.add_argument("--message-id", action="append", default=[])
            sub.add_argument("--key", action="append", default=[])
            sub.add_argument("--reason-contains")
            sub.add_argument("--original-topic")
            sub.add_argument("--include-handled", action="store_true")
        if name in {"replay", "purge"}:
            sub.add_argument("--all", action="store_true", help="every record that matches")
            sub.add_argument(
                "--operator",
                default=os.environ.get("SANALPOS_OPERATOR") or default_operator(),
                help="who is acting (audited); default $SANALPOS_OPERATOR or user@host",
            )
            sub.add_argument("--note", help="why (audited), e.g. the fix's ticket")
        if name == "replay":
            sub.add_argument(
                "--force", action="store_true", help="replay records already replayed/purged"
            )
    return parser


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(
        refs=frozenset(args.ref),
        message_ids=frozenset(args.message_id),
        keys=frozenset(args.key),
        reason_contains=args.reason_contains,
        original_topic=args.original_topic,
        every=getattr(args, "all", False),
    )


def _line(record: DeadLetter) -> str:
    handled = f"  [{record.handled}]" if record.handled else ""
    return (
        f"{record.topic}  {record.ref:<8} age {_age(record.age_s):>7}  "
        f"from {record.original_position}  attempts {record.header('dlq.attempts') or '?'}  "
        f"reason: {record.reason[:160]}{handled}"
    )


def _show(record: DeadLetter) -> str:
    lines = [_line(record), f"  key: {(record.key or b'').decode(errors='replace')}"]
    lines += [f"  header {k}: {v.decode(errors='replace')[:1000]}" for k, v in record.headers]
    value = (record.value or b"").decode(errors="replace")
    lines.append(f"  value ({len(record.value or b'')} bytes): {value[:4000]}")
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    ops = DeadLetterOps(args.bootstrap)
    consumers = consumers_of(args.service, args.consumer)
    if args.command == "history":
        for audit in await ops.audit(consumers):
            where = f" -> {audit.replayed_to}" if audit.replayed_to else ""
            note = f"  note: {audit.note}" if audit.note else ""
            print(
                f"{audit.at}  {audit.action:<6} by {audit.operator}  {audit.dlq_topic} "
                f"{audit.partition}:{audit.offset}  (from {audit.original}){where}  "
                f"reason: {audit.reason[:120]}{note}"
            )
        return 0
    selection = _selection(args)
    include_handled = args.include_handled or getattr(args, "force", False)
    records = [
        r
        for r in await ops.dead_letters(consumers, include_handled=include_handled)
        if selection.matches(r)
    ]
    if args.command == "list":
        for record in records:
            print(_line(record))
        print(f"{len(records)} dead letter(s) {'in all' if include_handled else 'unhandled'}")
        return 0
    if args.command == "show":
        for record in records:
            print(_show(record))
        return 0 if records else 1
    if selection.empty:
        print(
            "say which records: --ref, --message-id, --key, --reason-contains, "
            "--original-topic or --all",
            file=sys.stderr,
        )
        return 2
    if not records:
        print("no dead letters match", file=sys.stderr)
        return 1
    if args.command == "replay":
        blocked = [r for r in records if not r.replayable]
        if blocked:
            for r in blocked:
                print(f"cannot replay {r.topic} {r.ref}: its value was not kept", file=sys.stderr)
            return 1
        done = await ops.replay(records, args.operator, args.note)
        for audit in done:
            print(
                f"replayed {audit.dlq_topic} {audit.partition}:{audit.offset} -> {audit.replayed_to}"
            )
    else:
        done = await ops.purge(records, args.operator, args.note)
        for audit in done:
            print(f"marked handled {audit.dlq_topic} {audit.partition}:{audit.offset}")
    verb = "replayed" if args.command == "replay" else "marked handled"
    print(f"{len(done)} record(s) {verb} by {args.operator} (audit: ops.dlq-audit.v1)")
    return 0


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        return asyncio.run(_run(args))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
