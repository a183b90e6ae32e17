#!/usr/bin/env bash
# Local infrastructure for sanalpos (Kafka + PostgreSQL), real processes, no Docker.
#
#   scripts/infra/infra.sh up       install + start + wait Kafka and PostgreSQL, create the service databases
#   scripts/infra/infra.sh down     stop the local Kafka and PostgreSQL of this state dir
#   scripts/infra/infra.sh status   show what runs and the effective endpoints
#   scripts/infra/infra.sh env      print export lines:  eval "$(scripts/infra/infra.sh env)"
#
# Endpoints from the environment win: with KAFKA_BOOTSTRAP_SERVERS set no local Kafka is started;
# with all five <SVC>_DATABASE_URL set no local PostgreSQL is started.
# Settings: SANALPOS_STATE_DIR, SANALPOS_KAFKA_PORT, SANALPOS_KAFKA_CONTROLLER_PORT, SANALPOS_PG_PORT
# (see env.sh); two state dirs with different ports run side by side.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

KAFKA_SH="$SANALPOS_INFRA_DIR/kafka.sh"
POSTGRES_SH="$SANALPOS_INFRA_DIR/postgres.sh"

usage() {
    echo "usage: $0 {up|down|status|env}" >&2
    exit 2
}

cmd_up() {
    local t0=$SECONDS local_kafka=1 local_pg=1
    ensure_state_dirs
    if kafka_external; then
        local_kafka=0
        log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS from the environment: not starting local kafka"
    fi
    if postgres_external; then
        local_pg=0
        log "all <SVC>_DATABASE_URL set in the environment: not starting local postgres"
    fi
    if ((local_kafka)); then
        "$KAFKA_SH" install
        "$KAFKA_SH" start # returns at once; the broker boots while postgres starts
    fi
    if ((local_pg)); then
        "$POSTGRES_SH" start
        "$POSTGRES_SH" wait
        "$POSTGRES_SH" createdbs
    fi
    if ((local_kafka)); then
        "$KAFKA_SH" wait
    fi
    log "infrastructure up in $((SECONDS - t0))s"
    print_endpoints
}

cmd_down() {
    local rc=0
    "$KAFKA_SH" stop || rc=1
    "$POSTGRES_SH" stop || rc=1
    return "$rc"
}

cmd_status() {
    local rc=0
    "$KAFKA_SH" status || rc=1
    "$POSTGRES_SH" status || rc=1
    print_endpoints
    return "$rc"
}

main() {
    [[ $# -eq 1 ]] || usage
    case "$1" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) print_env_exports ;;
        *) usage ;;
    esac
}

main "$@"
