"""Several worker processes for one service, on one port.

`<SERVICE>_WORKERS=N` (e.g. `INTAKE_WORKERS=4`) forks N copies of the service before any
event loop exists. Each worker builds everything itself (pool, producer, consumers, relay)
and binds the HTTP port with SO_REUSEPORT, so the kernel spreads connections over them;
their consumers share partitions through the consumer group, and only one outbox relay per
database publishes at a time (`OutboxRelay` takes a leader lock). The parent only
supervises: a worker that dies is started again, SIGTERM/SIGINT stop them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
RESTART_BACKOFF_S = 1.0


def worker_count(service: str, environ: dict[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = env.get(f"{service.upper()}_WORKERS") or env.get("SANALPOS_WORKERS") or "1"
    try:
        count = int(raw)
    except ValueError:
        raise SystemExit(f"{service.upper()}_WORKERS must be a whole number, not {raw!r}") from None
    if not 1 <= count <= 64:
        raise SystemExit(f"{service.upper()}_WORKERS must be between 1 and 64, not {count}")
    return count


def run_workers(count: int, run_one: Callable[[], None]) -> None:
    """Fork `count` workers that each call `run_one()`, and supervise them until stopped."""
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.environ["SANALPOS_WORKER_INDEX"] = str(index)
            code = 1
            try:
                run_one()
                code = 0
            except Exception:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)  # never return into the parent's supervision loop
        children[pid] = index

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in range(count):
        start(worker)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        dead = children.pop(pid, None)
        if dead is None or stopping:
            continue
        log.warning("worker %d (pid %d) exited with %d; starting it again", dead, pid, status)
        time.sleep(RESTART_BACKOFF_S)
        if not stopping:  # a stop may have come during the pause
            start(dead)
