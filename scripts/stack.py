#!/usr/bin/env python3
"""Runs the whole sanalpos system locally: infrastructure, the five services, demo traffic.

    python scripts/stack.py up       start infra + services in the background (idempotent)
    python scripts/stack.py down     stop services, then infra
    python scripts/stack.py status   what runs, and each service's /readyz
    python scripts/stack.py logs     follow every service's log
    python scripts/stack.py demo     send demo payments with a live summary (Ctrl-C stops)
    python scripts/stack.py run      up + demo, and everything stops on Ctrl-C

Ports and endpoints come from the environment (see README.md); endpoints given in the
environment (KAFKA_BOOTSTRAP_SERVERS, <SERVICE>_DATABASE_URL) replace the local processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "scripts" / "infra" / "infra.sh"
PROMETHEUS = ROOT / "scripts" / "infra" / "prometheus.sh"
MAIL_SINK = ROOT / "scripts" / "mail_sink.py"
SINK = "mail-sink"
SERVICES = ("intake", "fraud", "authorization", "settlement", "notification")
DEFAULT_PORTS = {
    "intake": 18000,
    "fraud": 18001,
    "authorization": 18002,
    "settlement": 18003,
    "notification": 18004,
}


def demo_key() -> str:
    """The documented development key (from intake's config: one source of truth). Imported
    lazily: `down`, `status` and `logs` also run outside the project's environment."""
    from intake.config import DEMO_API_KEY

    return DEMO_API_KEY


def state_dir() -> Path:
    return Path(os.environ.get("SANALPOS_STATE_DIR", ROOT / ".state")).resolve()


def port_of(service: str) -> int:
    return int(os.environ.get(f"{service.upper()}_HTTP_PORT", DEFAULT_PORTS[service]))


def mail_dir() -> Path:
    return state_dir() / "mail"


def sink_port() -> int:
    return int(os.environ.get("SANALPOS_SMTP_SINK_PORT", "25025"))


def sink_wanted() -> bool:
    """The local SMTP sink runs unless notification is pointed at another SMTP server."""
    return "NOTIFICATION_SMTP_HOST" not in os.environ


def infra_env() -> dict[str, str]:
    """Effective endpoints as printed by infra.sh env (environment values win)."""
    out = subprocess.run(["bash", str(INFRA), "env"], check=True, capture_output=True, text=True)
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def service_env() -> dict[str, str]:
    env = {**os.environ, **infra_env()}
    for service in SERVICES:
        env.setdefault(f"{service.upper()}_HTTP_PORT", str(port_of(service)))
    env.setdefault("SANALPOS_ENV", "development")
    # fraud's RocksDB tables live with the rest of the local state (`make clean` drops them).
    env.setdefault("FRAUD_FAUST_DATADIR", str(state_dir() / "fraud-faust"))
    if sink_wanted():  # shopper emails go to the local sink (and so to .eml files)
        env["NOTIFICATION_SMTP_HOST"] = "127.0.0.1"
        env["NOTIFICATION_SMTP_PORT"] = str(sink_port())
        env["NOTIFICATION_SMTP_TLS"] = "none"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pid_file(service: str) -> Path:
    return state_dir() / "run" / f"{service}.pid"


def log_file(service: str) -> Path:
    return state_dir() / "logs" / f"{service}.log"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def running_pid(service: str) -> int | None:
    path = pid_file(service)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    return pid if pid and alive(pid) else None


def http_json(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def start_process(name: str, command: list[str], env: dict[str, str], port: int) -> None:
    if (pid := running_pid(name)) is not None:
        print(f"  {name:<14} already running (pid {pid})")
        return
    log_file(name).parent.mkdir(parents=True, exist_ok=True)
    pid_file(name).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file(name), "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file(name).write_text(str(process.pid))
    print(f"  {name:<14} started (pid {process.pid}, port {port})")


def start_service(service: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", f"{service}.entrypoints.main"]
    start_process(service, command, env, port_of(service))


def start_mail_sink(env: dict[str, str]) -> None:
    """aiosmtpd on 127.0.0.1, writing every message notification sends as an .eml file."""
    command = [sys.executable, str(MAIL_SINK), "--port", str(sink_port()), "--dir", str(mail_dir())]
    start_process(SINK, command, env, sink_port())


def wait_sink_ready(timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(SINK) is None:
            tail = log_file(SINK).read_text(errors="replace")[-3000:]
            sys.exit(f"{SINK} exited during start-up; log tail:\n{tail}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", sink_port()), timeout=1),
        ):
            return
        time.sleep(0.2)
    sys.exit(f"{SINK} not listening on 127.0.0.1:{sink_port()} after {timeout_s:.0f}s")


def wait_ready(services: tuple[str, ...], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(services)
    while pending and time.monotonic() < deadline:
        for service in list(pending):
            if running_pid(service) is None:
                tail = log_file(service).read_text(errors="replace")[-3000:]
                sys.exit(f"{service} exited during start-up; log tail:\n{tail}")
            with contextlib.suppress(OSError, ValueError):
                status, _ = http_json(f"http://127.0.0.1:{port_of(service)}/readyz")
                if status == 200:
                    pending.remove(service)
        time.sleep(0.5)
    if pending:
        sys.exit(f"not ready after {timeout_s:.0f}s: {', '.join(pending)} (see {state_dir()}/logs)")


def prometheus_enabled() -> bool:
    """`SANALPOS_PROMETHEUS=off` (set by `make test`) runs the stack without Prometheus."""
    return os.environ.get("SANALPOS_PROMETHEUS", "on").lower() not in {"off", "0", "false", "no"}


def prometheus(command: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    out = subprocess.run(
        ["bash", str(PROMETHEUS), command],
        check=check,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    return out.stdout.strip()


def trace_file() -> Path:
    return state_dir() / "traces.jsonl"


def up(*, traces: bool = False) -> None:
    """With `traces` (make run) the services write their spans to the state folder's trace
    file unless SANALPOS_TRACE_FILE says elsewhere; `make up` (and so `make bench`) traces
    only when SANALPOS_TRACE_FILE or OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    subprocess.run(["bash", str(INFRA), "up"], check=True)
    env = service_env()
    if traces:
        env.setdefault("SANALPOS_TRACE_FILE", str(trace_file()))
    if prometheus_enabled():
        prometheus("start", env)  # scrapes the services' ports from `env`; returns at once
    print("services:")
    if sink_wanted():
        start_mail_sink(env)
        wait_sink_ready()
    for service in SERVICES:
        start_service(service, env)
    wait_ready(SERVICES)
    print(
        f"\nall services ready. intake: http://127.0.0.1:{port_of('intake')}  demo key: {demo_key()}"
    )
    if prometheus_enabled():
        prometheus("wait", env)
        url = prometheus("url", env)
        print(f"prometheus: {url}   alerts: {url}/alerts")
        print(f"ops page:   {url}/consoles/sanalpos.html")
    if env.get("SANALPOS_TRACE_FILE"):
        print(f"traces: {env['SANALPOS_TRACE_FILE']}  (uv run sanalpos trace PAYMENT_ID)")
    if sink_wanted():
        print(f"mail:   {mail_dir()}/*.eml  (shopper receipts; SMTP sink 127.0.0.1:{sink_port()})")


def stop_services() -> None:
    for service in (*reversed(SERVICES), SINK):
        pid = running_pid(service)
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        pid_file(service).unlink(missing_ok=True)
        print(f"  {service:<14} stopped")


def down() -> None:
    stop_services()
    prometheus("stop", check=False)
    subprocess.run(["bash", str(INFRA), "down"], check=False)


def status() -> None:
    subprocess.run(["bash", str(INFRA), "status"], check=False)
    print(prometheus("status", check=False))
    for service in SERVICES:
        pid = running_pid(service)
        ready = "-"
        if pid:
            with contextlib.suppress(OSError, ValueError):
                ready = (
                    "ready"
                    if http_json(f"http://127.0.0.1:{port_of(service)}/readyz")[0] == 200
                    else "not ready"
                )
        print(f"{service:<14} {'pid ' + str(pid) if pid else 'stopped':<12} {ready}")
    if (pid := running_pid(SINK)) is not None:
        count = len(list(mail_dir().glob("*.eml")))
        print(f"{SINK:<14} {'pid ' + str(pid):<12} {count} messages in {mail_dir()}")


def logs() -> None:
    files = [str(log_file(s)) for s in (*SERVICES, SINK) if log_file(s).exists()]
    os.execvp("tail", ["tail", "-n", "20", "-F", *files])  # noqa: S606


# Test ranges that decline at the issuer (README), mixed into otherwise fresh shoppers' cards.
DECLINING_RANGES = (
    "40000099",  # insufficient funds over 10.00
    "40000002",  # do not honour
    "40000069",  # issuer says expired
)


def shopper_card(rng: random.Random, prefix: str | None = None) -> str:
    """A fresh Luhn-valid number: the simulator approves unknown cards outside test ranges."""
    if prefix is not None:
        digits = [int(d) for d in prefix]
    else:
        digits = [4] if rng.random() < 0.6 else [5, rng.randint(1, 5)]
    digits += [rng.randint(0, 9) for _ in range(15 - len(digits))]
    checksum = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 == 0 else digit
        checksum += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, digits)) + str((10 - checksum % 10) % 10)


def close_batches() -> int:
    """Settlement settles payments when a merchant's end-of-day batch closes (at its cut-off).
    The demo closes the open batches now and then through settlement's ops endpoint, so
    payments still reach `settled` within seconds."""
    from sanalpos_common.settings import DEV_ADMIN_TOKEN

    token = os.environ.get("SETTLEMENT_ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port_of('settlement')}/admin/batches/close",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=30) as response:
        return len(json.loads(response.read())["closed"])
    return 0


DEMO_BATCH_CLOSE_EVERY_S = 10.0
DEMO_SHOPPERS = (("Ayşe Yıldız", "tr"), ("Mehmet Demir", "tr"), ("Jane Smith", "en"))  # noqa: RUF001 - Turkish names


def intake_takes_shopper(intake: str) -> bool:
    """Whether intake's payment request has a `shopper` with email and locale (its OpenAPI
    document says): only then does the demo send shoppers, whose receipts reach the sink."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        with urllib.request.urlopen(f"{intake}/openapi.json", timeout=5) as response:
            schemas = json.loads(response.read())["components"]["schemas"]

        def resolve(node: dict) -> dict:
            for option in node.get("anyOf", []) + node.get("allOf", []):
                if "$ref" in option or "properties" in option:
                    return resolve(option)
            if "$ref" in node:
                return resolve(schemas[node["$ref"].rsplit("/", 1)[-1]])
            return node

        for name, schema in schemas.items():
            shopper = schema.get("properties", {}).get("shopper")
            if name.startswith("CreatePayment") and shopper is not None:
                return {"email", "locale"} <= set(resolve(shopper).get("properties", {}))
    return False


def demo(rate: float, duration_s: float | None) -> None:
    intake = f"http://127.0.0.1:{port_of('intake')}"
    rng = random.Random()
    sent: list[str] = []
    started = time.monotonic()
    last_summary = 0.0
    last_close = time.monotonic()
    shoppers = intake_takes_shopper(intake)
    print(f"demo merchant sending ~{rate:g} payments/s to {intake} (Ctrl-C to stop)")
    if shoppers:
        print(f"  half of them with a shopper email: receipts land in {mail_dir()}")
    while duration_s is None or time.monotonic() - started < duration_s:
        body = {
            "amount": random.choice([999, 2500, 12_500, 49_900, 250_000]),
            "currency": random.choice(["TRY", "TRY", "TRY", "USD", "EUR"]),
            "capture": random.random() < 0.85,
            "installments": random.choice([1, 1, 1, 3, 6]),
            "order_id": f"demo-{len(sent) + 1}",
            "card": {
                "number": shopper_card(
                    rng, rng.choice(DECLINING_RANGES) if rng.random() < 0.1 else None
                ),
                "exp_month": 12,
                "exp_year": 2030,
                "cvc": "123",
            },
        }
        if shoppers and rng.random() < 0.5:
            name, locale = rng.choice(DEMO_SHOPPERS)
            address = f"shopper{len(sent) + 1}@example.com"
            body["shopper"] = {"email": address, "name": name, "locale": locale}
        request = urllib.request.Request(
            f"{intake}/v1/payments",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {demo_key()}", "Content-Type": "application/json"},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as response:
            sent.append(json.loads(response.read())["id"])
        if time.monotonic() - last_close >= DEMO_BATCH_CLOSE_EVERY_S:
            last_close = time.monotonic()
            print(f"  end-of-day batches closed: {close_batches()}", flush=True)
        if time.monotonic() - last_summary >= 2.0:
            last_summary = time.monotonic()
            print_summary(intake, sent[-200:], len(sent))
        time.sleep(1.0 / rate)
    time.sleep(2.0)  # traffic over: let the last captures reach settlement, then close the day
    print(f"  end-of-day batches closed: {close_batches()}", flush=True)
    time.sleep(2.0)
    print_summary(intake, sent[-200:], len(sent))


def print_summary(intake: str, recent: list[str], total: int) -> None:
    statuses: Counter[str] = Counter()
    for payment_id in recent:
        request = urllib.request.Request(
            f"{intake}/v1/payments/{payment_id}", headers={"Authorization": f"Bearer {demo_key()}"}
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as response:
            statuses[json.loads(response.read())["status"]] += 1
    summary = "  ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
    print(
        f"[{time.strftime('%H:%M:%S')}] sent {total:>5} | last {len(recent)} by status: {summary}",
        flush=True,
    )


def run(rate: float) -> None:
    # A shell that starts us in the background leaves SIGINT ignored; Ctrl-C and SIGTERM
    # must still stop everything cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    up(traces=True)
    try:
        demo(rate, None)
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        down()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=["up", "down", "status", "logs", "demo", "run", "stop-services"]
    )
    parser.add_argument("--rate", type=float, default=float(os.environ.get("DEMO_RATE", "3")))
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    if args.command == "up":
        up()
    elif args.command == "down":
        down()
    elif args.command == "stop-services":
        stop_services()
    elif args.command == "status":
        status()
    elif args.command == "logs":
        logs()
    elif args.command == "demo":
        with contextlib.suppress(KeyboardInterrupt):
            demo(args.rate, args.duration)
    else:
        run(args.rate)


if __name__ == "__main__":
    main()
