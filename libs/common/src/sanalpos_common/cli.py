"""`sanalpos`: the operator's command line.

    sanalpos keys {generate,rotate,status,disable,enable,destroy,cvc-rotate} ...
    sanalpos keys rewrap --service NAME [--batch-size N]
    sanalpos dlq {list,show,replay,purge,history} --service NAME ...   dead letters
    sanalpos trace PAYMENT_ID [--trace-file FILE]   one payment across every service
    sanalpos status [--watch [SECONDS]]             readiness, lag, outbox, dead letters
    sanalpos <command> ...        commands that services register (e.g. `merchants`)

Services plug in through entry points, so this package never imports a service:
- group `sanalpos.commands`: name -> callable(argv: list[str]) -> int
- group `sanalpos.rewrap`: service name -> async callable(batch_size, progress) -> int (rows left)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from sanalpos_common import dlq_cli, keys_cli, ops_cli
from sanalpos_common.crypto.rewrap import RewrapProgress


def _report(progress: RewrapProgress) -> None:
    print(
        f"  batch {progress.batches}: {progress.done}/{progress.total} re-wrapped, "
        f"{progress.failed} failed, {progress.remaining} remaining ({progress.elapsed_s:.1f}s)",
        flush=True,
    )


def _rewrap(argv: Sequence[str]) -> int:
    targets = {ep.name: ep for ep in entry_points(group="sanalpos.rewrap")}
    parser = argparse.ArgumentParser(prog="sanalpos keys rewrap")
    parser.add_argument("--service", required=True, help=f"one of: {', '.join(sorted(targets))}")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.service not in targets:
        print(f"no re-wrap job registered for {args.service!r}", file=sys.stderr)
        return 2
    job = targets[args.service].load()
    left = asyncio.run(job(args.batch_size, _report))
    print(f"rewrap finished: {left} rows not on the newest key version")
    return 0 if left == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {ep.name: ep for ep in entry_points(group="sanalpos.commands")}
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        print(
            "registered commands:", ", ".join(["keys", "dlq", "status", "trace", *sorted(commands)])
        )
        return 0
    command, rest = args[0], args[1:]
    if command == "keys":
        if rest[:1] == ["rewrap"]:
            return _rewrap(rest[1:])
        return keys_cli.main(rest)
    if command == "dlq":
        return dlq_cli.main(rest)
    if command == "trace":
        return ops_cli.trace_main(rest)
    if command == "status":
        return ops_cli.status_main(rest)
    if command in commands:
        result: int = commands[command].load()(rest)
        return result
    print(f"unknown command {command!r}; try `sanalpos --help`", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
