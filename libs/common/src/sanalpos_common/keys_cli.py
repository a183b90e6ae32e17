"""Key management for keyring files and secret files (never prints key material).

    python -m sanalpos_common.keys_cli generate   --file F --key-id pan [--force]
    python -m sanalpos_common.keys_cli rotate     --file F
    python -m sanalpos_common.keys_cli status     --file F [--json]
    python -m sanalpos_common.keys_cli disable    --file F --version N [--suspend]
    python -m sanalpos_common.keys_cli enable     --file F --version N
    python -m sanalpos_common.keys_cli destroy    --file F --version N
                                                  (--dsn URL --ref TABLE.COLUMN ... | --unreferenced)
    python -m sanalpos_common.keys_cli cvc-rotate --file F [--period 3600] [--ttl 7200]

`disable` makes a version decrypt-only (disabled for encryption); with `--suspend` it neither
encrypts nor decrypts (reversible with `enable`). `destroy` removes the key material for good and
refuses while any referenced table column still holds a ciphertext under that version (counted
live with `--dsn`/`--ref`), unless the operator states `--unreferenced`.

Files are written atomically with mode 0600; a file group/other can read is refused (pass
`--no-permission-check` for a mounted secret whose mode you manage elsewhere). Exit codes:
0 done, 1 refused/error, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sanalpos_common.crypto.cvc import rotate_cvc_key_file
from sanalpos_common.crypto.keyring import Keyring, KeyringError, KeyState
from sanalpos_common.crypto.providers import read_keyring_file, write_key_file


def _load(args: argparse.Namespace) -> Keyring:
    return read_keyring_file(args.file, check_permissions=not args.no_permission_check)


def _save(args: argparse.Namespace, ring: Keyring, message: str) -> None:
    write_key_file(args.file, ring.to_json())
    print(f"{message}; {ring.key_id}: writes with v{ring.active_version}")


def _status(ring: Keyring, as_json: bool) -> None:
    rows = ring.describe()
    if as_json:
        print(json.dumps({"id": ring.key_id, "active": ring.active_version, "versions": rows}))
        return
    print(f"keyring {ring.key_id!r}: new writes use v{ring.active_version}")
    for row in rows:
        mark = "  <- writes" if row["writes"] else ""
        print(f"  v{row['version']:<12} {row['state']:<13} kcv={row['kcv'] or '-'}{mark}")


async def _count_refs(dsn: str, refs: Sequence[str], ring: Keyring, version: int) -> int:
    import asyncpg

    from sanalpos_common.crypto.rewrap import count_key_versions, references

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        total = 0
        for ref in refs:
            table, _, column = ref.rpartition(".")
            counts = await count_key_versions(pool, table, column)
            n = references(counts, ring, version)
            print(f"  {ref}: {n} ciphertext(s) under v{version}")
            total += n
        return total
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sanalpos_common.keys_cli")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--file", type=Path, required=True, help="keyring file or secret file")
        p.add_argument("--no-permission-check", action="store_true")
        return p

    p = command("generate", "create a new keyring file")
    p.add_argument("--key-id", required=True)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    command("rotate", "add a new active version; previous versions become decrypt-only")
    p = command("status", "versions and states (key check values, never keys)")
    p.add_argument("--json", action="store_true")
    p = command("disable", "stop a version encrypting (decrypt-only), or --suspend it fully")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--suspend", action="store_true", help="also refuse to decrypt")
    p = command("enable", "make a decrypt-only or suspended version active again")
    p.add_argument("--version", type=int, required=True)
    p = command("destroy", "remove a version's key material for good")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--dsn", help="database holding the referencing tables")
    p.add_argument("--ref", action="append", default=[], help="TABLE.COLUMN holding ciphertexts")
    p.add_argument(
        "--unreferenced", action="store_true", help="operator asserts nothing references it"
    )
    p = command("cvc-rotate", "time-bucketed CVC keys: add current/next period, drop expired")
    p.add_argument("--period", type=int, default=3600, help="seconds per key version")
    p.add_argument("--ttl", type=int, default=7200, help="seconds a version lives")
    p.add_argument("--key-id", default="cvc")
    args = parser.parse_args(argv)

    try:
        if args.command == "generate":
            if args.file.exists() and not args.force:
                print(f"{args.file} exists; use --force to replace it", file=sys.stderr)
                return 1
            _save(args, Keyring.generate(args.key_id), f"generated {args.file}")
        elif args.command == "status":
            _status(_load(args), args.json)
        elif args.command == "rotate":
            _save(args, _load(args).rotated(), "rotated")
        elif args.command == "disable":
            state = KeyState.DISABLED if args.suspend else KeyState.DECRYPT_ONLY
            _save(args, _load(args).with_state(args.version, state), f"v{args.version} {state}")
        elif args.command == "enable":
            _save(args, _load(args).with_state(args.version, KeyState.ACTIVE), "enabled")
        elif args.command == "destroy":
            ring = _load(args)
            if args.version == ring.active_version:
                print("refusing to destroy the write version; rotate first", file=sys.stderr)
                return 1
            if args.ref:
                if not args.dsn:
                    print("--ref needs --dsn", file=sys.stderr)
                    return 2
                refs = asyncio.run(_count_refs(args.dsn, args.ref, ring, args.version))
                if refs:
                    print(
                        f"refusing: {refs} ciphertext(s) still use v{args.version}; "
                        "run the re-wrap job first",
                        file=sys.stderr,
                    )
                    return 1
            elif not args.unreferenced:
                print(
                    "refusing: prove nothing references the version (--dsn and --ref) "
                    "or state --unreferenced",
                    file=sys.stderr,
                )
                return 1
            _save(args, ring.with_state(args.version, KeyState.DESTROYED), "destroyed")
        elif args.command == "cvc-rotate":
            new = rotate_cvc_key_file(
                args.file,
                datetime.now(UTC),
                timedelta(seconds=args.period),
                timedelta(seconds=args.ttl),
                key_id=args.key_id,
                check_permissions=not args.no_permission_check,
            )
            print(f"CVC keys: writes with v{new.active_version}, holds {sorted(new.keys)}")
    except (KeyringError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
