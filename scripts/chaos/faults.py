"""The faults of a chaos run, spread over the load by progress (share of payments created):
SIGKILLs of random services (each restarted at once), broker and PostgreSQL restarts, and one
service frozen with SIGSTOP for a while, then resumed."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from chaos.stack import SERVICES, ChaosStack


@dataclass(frozen=True)
class FaultPlan:
    kills: int = 20
    broker_restarts: int = 3
    postgres_restarts: int = 2
    freeze_s: float = 60.0  # 0: no SIGSTOP
    freeze_service: str | None = None  # None: a random one


@dataclass
class Fault:
    at_progress: float
    kind: str  # "kill" | "broker" | "postgres" | "freeze"
    target: str | None = None


@dataclass
class FaultLog:
    done: list[tuple[float, str, str, float]] = field(default_factory=list)
    """(seconds since the load began, kind, target, seconds it took)"""

    def add(self, since: float, kind: str, target: str, took: float) -> None:
        self.done.append((since, kind, target, took))
        print(f"  [{since:7.1f}s] {kind:<9} {target:<14} ({took:.1f}s)", flush=True)

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _, _ in self.done if k == kind)


def schedule(plan: FaultPlan, rng: random.Random) -> list[Fault]:
    """Kills go round the five services (shuffled), so every one is killed; the other faults
    are spaced out between 10% and 85% of the load."""
    faults: list[Fault] = []
    targets: list[str] = []
    while len(targets) < plan.kills:
        batch = list(SERVICES)
        rng.shuffle(batch)
        targets += batch
    for index, target in enumerate(targets[: plan.kills]):
        faults.append(Fault(0.05 + 0.85 * (index + 0.5) / plan.kills, "kill", target))

    def spread(count: int, kind: str, offset: float) -> None:
        for index in range(count):
            at = 0.10 + 0.75 * (index + offset) / count
            faults.append(Fault(at, kind))

    spread(plan.broker_restarts, "broker", 0.3)
    spread(plan.postgres_restarts, "postgres", 0.7)
    if plan.freeze_s > 0:
        faults.append(Fault(0.45, "freeze", plan.freeze_service or rng.choice(SERVICES)))
    return sorted(faults, key=lambda f: f.at_progress)


class Injector:
    def __init__(self, stack: ChaosStack, plan: FaultPlan, rng: random.Random) -> None:
        self.stack = stack
        self.plan = plan
        self.faults = schedule(plan, rng)
        self.log = FaultLog()
        self.progress = 0.0
        self.started = time.monotonic()
        self._freezes: list[asyncio.Task[None]] = []

    def on_progress(self, share: float) -> None:
        self.progress = share

    async def run(self, load_done: asyncio.Event) -> None:
        """Injects each fault once the load has passed its point; whatever is left when the
        load is over is injected then, so every planned fault happens."""
        for fault in self.faults:
            while self.progress < fault.at_progress and not load_done.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            await self._inject(fault)
        await asyncio.gather(*self._freezes)

    async def _inject(self, fault: Fault) -> None:
        since = time.monotonic() - self.started
        started = time.monotonic()
        if fault.kind == "kill":
            assert fault.target is not None
            if fault.target in self.stack.stopped:  # frozen: kill another one
                fault.target = next(s for s in SERVICES if s not in self.stack.stopped)
            self.stack.kill(fault.target)
            self.stack.start(fault.target)  # at once: nothing else may see it dead meanwhile
            self.log.add(since, "SIGKILL", fault.target, time.monotonic() - started)
            await asyncio.sleep(2.0)
        elif fault.kind == "broker":
            took = await self.stack.restart_broker()
            self.log.add(since, "broker", "kafka", took)
        elif fault.kind == "postgres":
            took = await self.stack.restart_postgres()
            self.log.add(since, "postgres", "postgres", took)
        else:
            assert fault.target is not None
            self._freezes.append(asyncio.create_task(self._freeze(fault.target, since)))

    async def _freeze(self, name: str, since: float) -> None:
        self.stack.pause(name)
        print(f"  [{since:7.1f}s] SIGSTOP   {name:<14} for {self.plan.freeze_s:.0f}s", flush=True)
        await asyncio.sleep(self.plan.freeze_s)
        self.stack.resume(name)
        self.log.add(since, "SIGSTOP", name, self.plan.freeze_s)
