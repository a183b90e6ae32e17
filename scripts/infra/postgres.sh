#!/usr/bin/env bash
# Local PostgreSQL server in the project's state folder, no Docker, not the Debian-managed cluster.
#
#   scripts/infra/postgres.sh install     find (or apt-install) server binaries, initdb once
#   scripts/infra/postgres.sh start       start on 127.0.0.1:$SANALPOS_PG_PORT (reuses a running one)
#   scripts/infra/postgres.sh wait        block until it accepts connections (60 s timeout)
#   scripts/infra/postgres.sh createdbs   role + database sanalpos_<svc> per service (idempotent)
#   scripts/infra/postgres.sh stop        fast shutdown
#   scripts/infra/postgres.sh status      print running / not running
#
# As root, everything server-side runs as the `postgres` system user when it exists, otherwise
# as a system user `sanalpos` created on first use.
# Settings: see env.sh (SANALPOS_STATE_DIR, SANALPOS_PG_PORT); SANALPOS_PG_BINDIR forces a bindir.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PG_HOME="$STATE/pg"
PG_DATA="$PG_HOME/data"
PG_RUN="$PG_HOME/run"
PG_LOG="$SANALPOS_LOG_DIR/postgres.log"
PG_LOCK="$PG_HOME/.lock"
PG_WAIT_TIMEOUT="${SANALPOS_PG_WAIT_TIMEOUT:-60}"
PG_BIN=""
PG_USER=""

usage() {
    echo "usage: $0 {install|start|stop|status|wait|createdbs}" >&2
    exit 2
}

# ---------------------------------------------------------------- binaries and user

bindir_ok() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

find_bindir() {
    local d want cands=()
    [[ -n "${SANALPOS_PG_BINDIR:-}" ]] && cands+=("$SANALPOS_PG_BINDIR")
    # An existing cluster must keep running with its own major version.
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        want="$(<"$PG_DATA/PG_VERSION")"
        cands+=("/usr/lib/postgresql/$want/bin")
    fi
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$d" ]] && cands+=("$d")
    fi
    while IFS= read -r d; do
        cands+=("$d")
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r)
    if d="$(command -v initdb 2>/dev/null)"; then
        cands+=("$(dirname "$(readlink -f "$d")")")
    fi
    for d in "${cands[@]}"; do
        if bindir_ok "$d"; then
            if [[ -n "${want:-}" ]] && ! "$d/postgres" --version | grep -qE "[^0-9.]$want(\.|[^0-9]|$)"; then
                continue
            fi
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

ensure_bins() {
    [[ -n "$PG_BIN" ]] && return 0
    if ! PG_BIN="$(find_bindir)"; then
        if [[ -f "$PG_DATA/PG_VERSION" ]]; then
            die "no PostgreSQL $(<"$PG_DATA/PG_VERSION") server binaries for the existing cluster in $PG_DATA; install postgresql-$(<"$PG_DATA/PG_VERSION") or remove $PG_DATA"
        fi
        log "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
        apt_install postgresql ||
            die "PostgreSQL server binaries not found. Install the PostgreSQL server (Debian/Ubuntu: 'apt-get install -y postgresql'; other systems: the postgresql-server package), or point SANALPOS_PG_BINDIR at its bin folder."
        # The Debian package may create and start its own 'main' cluster: we never use it.
        PG_BIN="$(find_bindir)" || die "PostgreSQL server binaries still not found after apt-get install postgresql"
    fi
}

# Client tools: the bindir's own, else whatever is on PATH.
pg_tool() {
    if [[ -x "$PG_BIN/$1" ]]; then
        printf '%s\n' "$PG_BIN/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        die "$1 not found (install the PostgreSQL client, e.g. 'apt-get install -y postgresql-client')"
    fi
}

ensure_user() {
    [[ -n "$PG_USER" ]] && return 0
    if ! is_root; then
        PG_USER="$(id -un)"
        return 0
    fi
    if id -u postgres >/dev/null 2>&1; then
        PG_USER=postgres
    else
        if ! id -u sanalpos >/dev/null 2>&1; then
            log "creating system user 'sanalpos' to run PostgreSQL (it refuses to run as root)"
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin sanalpos ||
                die "could not create system user 'sanalpos'"
        fi
        PG_USER=sanalpos
    fi
}

# Run a command as the PostgreSQL user (from a folder that user can enter).
as_pg() {
    if is_root; then
        (cd "$PG_HOME" && runuser -u "$PG_USER" -- env HOME="$PG_HOME" "$@")
    else
        (cd "$PG_HOME" && "$@")
    fi
}

# Make every folder from / down to DIR enterable by the PostgreSQL user. Top-down, so that only
# the folders that really block the way are changed (o+x only, nothing else).
ensure_traversable() {
    is_root || return 0
    local d="$1" dirs=() i
    while [[ -n "$d" && "$d" != "/" ]]; do
        dirs+=("$d")
        d="$(dirname "$d")"
    done
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        d="${dirs[i]}"
        if [[ -d "$d" ]] && ! runuser -u "$PG_USER" -- test -x "$d"; then
            log "chmod o+x $d (so that user '$PG_USER' can reach $1)"
            chmod o+x "$d"
        fi
    done
}

prepare_dirs() {
    ensure_user
    mkdir -p "$PG_HOME" "$PG_RUN" "$SANALPOS_LOG_DIR"
    touch "$PG_LOG"
    if is_root; then
        chown "$PG_USER:" "$PG_HOME" "$PG_RUN" "$PG_LOG"
        if [[ -d "$PG_DATA" && "$(stat -c %U "$PG_DATA")" != "$PG_USER" ]]; then
            log "handing $PG_DATA to user '$PG_USER'"
            chown -R "$PG_USER:" "$PG_DATA"
        fi
        ensure_traversable "$PG_HOME"
        ensure_traversable "$SANALPOS_LOG_DIR"
    fi
    chmod 700 "$PG_RUN"
}

# Serialise start/stop/initdb between concurrent callers (fd 9; closed for the server).
take_lock() {
    mkdir -p "$PG_HOME"
    exec 9>"$PG_LOCK"
    flock -w 300 9 || die "could not lock $PG_LOCK within 300 s"
}

# ---------------------------------------------------------------- server state

# Pid of the postmaster of $PG_DATA when it is alive.
pg_pid() {
    local pid
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PG_DATA" || return 1
    printf '%s\n' "$pid"
}

pg_ready() {
    local isready
    isready="$(pg_tool pg_isready)"
    "$isready" -q -h 127.0.0.1 -p "$SANALPOS_PG_PORT" -t 2 >/dev/null 2>&1
}

pg_log_tail() {
    if [[ -s "$PG_LOG" ]]; then
        echo "----- last lines of $PG_LOG -----" >&2
        tail -n 30 "$PG_LOG" >&2
    fi
}

write_config() {
    # Regenerated on every start, so a different SANALPOS_PG_PORT just works.
    cat >"$PG_DATA/sanalpos.conf" <<EOF
# Generated by scripts/infra/postgres.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $SANALPOS_PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    if is_root; then chown "$PG_USER:" "$PG_DATA/sanalpos.conf"; fi
    chmod 600 "$PG_DATA/sanalpos.conf"
    if ! grep -qF "include_if_exists = 'sanalpos.conf'" "$PG_DATA/postgresql.conf"; then
        printf "\n# sanalpos local settings\ninclude_if_exists = 'sanalpos.conf'\n" >>"$PG_DATA/postgresql.conf"
    fi
}

cmd_install() {
    ensure_bins
    take_lock
    prepare_dirs
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        log "postgres cluster already initialised in $PG_DATA ($("$PG_BIN/postgres" --version))"
        return 0
    fi
    log "initdb $PG_DATA with $PG_BIN ($("$PG_BIN/postgres" --version)) as user '$PG_USER'"
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    chmod 700 "$PG_DATA"
    if is_root; then chown "$PG_USER:" "$PG_DATA"; fi
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" --encoding=UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_HOME/initdb.log" 2>&1; then
        cat "$PG_HOME/initdb.log" >&2
        rm -rf "$PG_DATA"
        die "initdb failed"
    fi
}

cmd_start() {
    cmd_install
    take_lock
    local pid
    if pid="$(pg_pid)"; then
        if pg_ready; then
            log "postgres already running (pid $pid, 127.0.0.1:$SANALPOS_PG_PORT), reusing it"
        else
            log "postgres already running (pid $pid) but not answering on 127.0.0.1:$SANALPOS_PG_PORT yet"
        fi
        return 0
    fi
    if port_open 127.0.0.1 "$SANALPOS_PG_PORT"; then
        die "port 127.0.0.1:$SANALPOS_PG_PORT is already used by a process that is not this state dir's postgres ($STATE); pick another with SANALPOS_PG_PORT"
    fi
    # Leftovers of a killed server (e.g. machine restart) whose pid may now belong to another process.
    if [[ -f "$PG_DATA/postmaster.pid" ]]; then
        log "removing stale $PG_DATA/postmaster.pid"
        rm -f "$PG_DATA/postmaster.pid"
    fi
    rm -f "$PG_RUN"/.s.PGSQL.*
    write_config
    log "starting postgres on 127.0.0.1:$SANALPOS_PG_PORT, log $PG_LOG"
    if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_WAIT_TIMEOUT" -s 9>&-; then
        pg_log_tail
        die "postgres failed to start"
    fi
}

cmd_wait() {
    local deadline=$((SECONDS + PG_WAIT_TIMEOUT)) quiet="${1:-}"
    ensure_bins
    while ! pg_ready; do
        if ! pg_pid >/dev/null; then
            pg_log_tail
            die "postgres is not running (data dir $PG_DATA)"
        fi
        if ((SECONDS >= deadline)); then
            pg_log_tail
            die "postgres not ready after ${PG_WAIT_TIMEOUT}s on 127.0.0.1:$SANALPOS_PG_PORT"
        fi
        sleep 0.5
    done
    [[ "$quiet" == quiet ]] || log "postgres ready on 127.0.0.1:$SANALPOS_PG_PORT"
}

cmd_stop() {
    take_lock
    if ! pg_pid >/dev/null; then
        log "postgres not running"
        return 0
    fi
    ensure_bins
    ensure_user
    log "stopping postgres"
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 -s 9>&- ||
        die "postgres did not stop (see $PG_LOG)"
    log "postgres stopped"
}

cmd_status() {
    local pid
    if pid="$(pg_pid)"; then
        if PG_BIN="$(find_bindir)" && pg_ready; then
            echo "postgres: running (pid $pid, 127.0.0.1:$SANALPOS_PG_PORT)"
        else
            echo "postgres: starting (pid $pid, port $SANALPOS_PG_PORT not answering yet)"
        fi
    else
        echo "postgres: not running"
        return 1
    fi
}

cmd_createdbs() {
    ensure_bins
    ensure_user
    pg_pid >/dev/null || die "postgres is not running; run '$0 start' first"
    cmd_wait quiet
    local psql svc sql
    psql="$(pg_tool psql)"
    # Session advisory lock: concurrent createdbs calls run one after the other.
    sql="SELECT pg_advisory_lock(hashtext('sanalpos-createdbs')) \\gset"$'\n'
    for svc in "${SANALPOS_SERVICES[@]}"; do
        local name="sanalpos_$svc"
        sql+="
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$name') THEN
        CREATE ROLE $name LOGIN PASSWORD '$name';
    ELSE
        ALTER ROLE $name LOGIN PASSWORD '$name';
    END IF;
END
\$\$;
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', '$name', '$name', 'UTF8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$name') \\gexec
ALTER DATABASE $name OWNER TO $name;
"
    done
    printf '%s\n' "$sql" | as_pg "$psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$PG_RUN" -p "$SANALPOS_PG_PORT" -U "$PG_USER" -d postgres >/dev/null ||
        die "creating the service roles/databases failed"
    log "databases ready: ${SANALPOS_SERVICES[*]/#/sanalpos_}"
}

main() {
    [[ $# -eq 1 ]] || usage
    ensure_state_dirs
    case "$1" in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        wait) cmd_wait ;;
        createdbs) cmd_createdbs ;;
        *) usage ;;
    esac
}

main "$@"
