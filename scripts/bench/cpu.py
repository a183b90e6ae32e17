"""CPU time of processes from /proc: parsing (pure) and the stack's process discovery."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    session: int
    cpu_ticks: int  # utime + stime


def parse_stat(text: str) -> ProcStat:
    """One /proc/<pid>/stat line. The command name (field 2) is in parentheses and may itself
    contain spaces and parentheses, so fields are counted from the last ')'."""
    pid = int(text[: text.index(" ")])
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid=4, session=6, utime=14, stime=15 (1-based, proc(5))
    return ProcStat(
        pid=pid, ppid=int(rest[1]), session=int(rest[3]), cpu_ticks=int(rest[11]) + int(rest[12])
    )


def parse_proc_stat_total(text: str) -> tuple[int, int]:
    """(busy ticks, all ticks) of the whole machine from /proc/stat's first line."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return total - idle, total


def ticks_to_ms(ticks: int) -> float:
    return 1000.0 * ticks / CLOCK_TICKS


def read_stat(pid: int) -> ProcStat | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def all_stats() -> list[ProcStat]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats.append(stat)
    return stats


def machine_busy() -> tuple[int, int]:
    return parse_proc_stat_total((PROC / "stat").read_text())


def read_pid_file(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if (PROC / str(pid)).exists() else None


@dataclass(frozen=True)
class StackPids:
    """Where the stack's processes are: services (each a session leader: stack.py starts
    them in a new session, so their children share the session id), the postmaster and the
    Kafka broker's JVM."""

    services: dict[str, int]
    postmaster: int | None
    kafka: int | None


def stack_pids(state_dir: Path, services: tuple[str, ...]) -> StackPids:
    found = {}
    for service in services:
        if (pid := read_pid_file(state_dir / "run" / f"{service}.pid")) is not None:
            found[service] = pid
    return StackPids(
        services=found,
        postmaster=read_pid_file(state_dir / "pg" / "data" / "postmaster.pid"),
        kafka=read_pid_file(state_dir / "kafka" / "kafka.pid"),
    )


def group_ticks(stats: list[ProcStat], pids: StackPids) -> dict[str, int]:
    """CPU ticks per component: each service's session, the Kafka JVM, and the postmaster with
    each of its children keyed 'pg:<pid>' (attributed to databases by the caller)."""
    by_pid = {s.pid: s for s in stats}
    out: dict[str, int] = {}
    for service, leader in pids.services.items():
        out[service] = sum(s.cpu_ticks for s in stats if s.session == leader or s.pid == leader)
    if pids.kafka is not None and pids.kafka in by_pid:
        out["kafka broker (JVM)"] = by_pid[pids.kafka].cpu_ticks
    if pids.postmaster is not None:
        for s in stats:
            if s.pid == pids.postmaster or s.ppid == pids.postmaster:
                out[f"pg:{s.pid}"] = s.cpu_ticks
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Ticks spent between two snapshots; a process born in between counts from zero, one that
    died in between is lost (its last ticks cannot be read)."""
    return {key: ticks - before.get(key, 0) for key, ticks in after.items()}


def attribute_postgres(ticks: dict[str, int], datname_of: dict[int, str]) -> dict[str, int]:
    """Folds 'pg:<pid>' entries into 'postgres <database>' (or 'postgres (background)' for the
    postmaster, checkpointer, WAL writer, autovacuum and backends not seen in pg_stat_activity)."""
    out: dict[str, int] = {}
    for key, value in ticks.items():
        if key.startswith("pg:"):
            name = datname_of.get(int(key[3:]))
            key = f"postgres {name}" if name else "postgres (background)"
        out[key] = out.get(key, 0) + value
    return out
