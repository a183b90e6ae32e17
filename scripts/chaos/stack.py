"""The chaos run's own system: Kafka and PostgreSQL from scripts/infra in their own state
folder and ports, and the five services as processes the harness kills and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "scripts" / "infra"
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
EXTERNAL = ("KAFKA_BOOTSTRAP_SERVERS", *(f"{s.upper()}_DATABASE_URL" for s in SERVICES))


@dataclass
class Service:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ChaosStack:
    state_dir: Path
    kafka_port: int
    controller_port: int
    pg_port: int
    service_port_base: int = 0
    """The five services listen on base..base+4 (0: kafka_port + 10). Fixed ports outside the
    kernel's ephemeral range, so a restarted service never finds its port taken by some
    client's outgoing connection."""
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    # ---------------------------------------------------------------- infrastructure

    def infra_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in EXTERNAL}
        env.update(
            SANALPOS_STATE_DIR=str(self.state_dir),
            SANALPOS_KAFKA_PORT=str(self.kafka_port),
            SANALPOS_KAFKA_CONTROLLER_PORT=str(self.controller_port),
            SANALPOS_PG_PORT=str(self.pg_port),
        )
        return env

    async def _script(self, script: str, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(INFRA / script),
            *args,
            env=self.infra_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{script} {' '.join(args)} failed:\n{out.decode()[-3000:]}")
        return out.decode()

    async def infra_up(self, fresh: bool) -> None:
        """Starts Kafka and PostgreSQL; `fresh` wipes their data first (the jars stay)."""
        await self._script("infra.sh", "down")
        if fresh:
            for path in ("kafka/data", "kafka/cluster-id", "pg", "logs"):
                target = self.state_dir / path
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        await self._script("infra.sh", "up")
        out = await self._script("infra.sh", "env")
        for line in out.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                self.endpoints[key] = value.strip().strip("'\"")

    async def infra_down(self) -> None:
        await self._script("infra.sh", "down")

    async def restart_broker(self) -> float:
        started = time.monotonic()
        await self._script("kafka.sh", "stop")
        await self._script("kafka.sh", "start")
        await self._script("kafka.sh", "wait")
        return time.monotonic() - started

    async def restart_postgres(self) -> float:
        started = time.monotonic()
        await self._script("postgres.sh", "stop")
        await self._script("postgres.sh", "start")
        await self._script("postgres.sh", "wait")
        return time.monotonic() - started

    @property
    def bootstrap(self) -> str:
        return self.endpoints["KAFKA_BOOTSTRAP_SERVERS"]

    def database_url(self, service: str) -> str:
        return self.endpoints[f"{service.upper()}_DATABASE_URL"]

    # ---------------------------------------------------------------------- services

    def service_env(self, name: str) -> dict[str, str]:
        return {
            # Rules only: the learned model weighs the hour of day (outcomes would depend
            # on when the run happens); pre-authorizations are captured or voided by the load.
            "FRAUD_MODEL_ENABLED": "false",
            "SANALPOS_STARTUP_TIMEOUT_S": "300",
            # The harness's webhook receiver listens on 127.0.0.1 (a development switch).
            "INTAKE_WEBHOOK_ALLOW_LOOPBACK": "true",
            "NOTIFICATION_WEBHOOK_ALLOW_LOOPBACK": "true",
            **self.infra_env(),
            **self.endpoints,
            **self.extra_env,
            f"{name.upper()}_HTTP_PORT": str(self.services[name].port),
            "SANALPOS_ENV": "development",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, name: str) -> None:
        service = self.services.get(name)
        if service is None:
            log_dir = self.state_dir / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            base = self.service_port_base or self.kafka_port + 10
            port = base + SERVICES.index(name)
            service = self.services[name] = Service(name, port, log_dir / f"{name}.log")
        with open(service.log_path, "ab") as log:
            service.process = subprocess.Popen(
                [sys.executable, "-m", f"{name}.entrypoints.main"],
                cwd=ROOT,
                env=self.service_env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service.starts += 1

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def kill(self, name: str) -> None:
        service = self.services[name]
        if service.process is not None and service.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(service.process.pid, signal.SIGKILL)
            service.process.wait()
            service.kills += 1

    def pause(self, name: str) -> None:
        process = self.services[name].process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        self.stopped.add(name)

    def resume(self, name: str) -> None:
        process = self.services[name].process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
        self.stopped.discard(name)

    def revive_dead(self) -> list[str]:
        """Restarts any service that died by itself (not one the harness has paused)."""
        dead = [n for n, s in self.services.items() if not s.alive and n not in self.stopped]
        for name in dead:
            self.start(name)
        return dead

    def terminate(self, name: str) -> None:
        service = self.services[name]
        if service.process is None or not service.alive:
            return
        self.resume(name)
        service.process.terminate()
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()

    def stop_all(self) -> None:
        for name in list(self.stopped):
            self.resume(name)
        for name in reversed(SERVICES):
            if name in self.services:
                self.terminate(name)

    async def wait_ready(self, names: tuple[str, ...] = SERVICES, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        async with httpx.AsyncClient(timeout=3) as client:
            while pending:
                for name in list(pending):
                    service = self.services[name]
                    if not service.alive:
                        self.start(name)  # died while its infrastructure was down: again
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{service.url}/readyz")).status_code == 200:
                            pending.discard(name)
                if time.monotonic() > deadline:
                    tails = "\n".join(
                        f"--- {n}\n{self.services[n].log_path.read_text(errors='replace')[-2000:]}"
                        for n in pending
                    )
                    raise RuntimeError(
                        f"not ready after {timeout_s:.0f}s: {sorted(pending)}\n{tails}"
                    )
                await asyncio.sleep(0.5)
