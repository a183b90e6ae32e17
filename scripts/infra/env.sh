# shellcheck shell=bash
# Shared settings and helpers for the local infrastructure scripts.
# Sourced by kafka.sh, postgres.sh and infra.sh; not meant to be executed.
#
# Every setting can be overridden from the environment:
#   SANALPOS_STATE_DIR               state folder (default: <repo>/.state)
#   SANALPOS_KAFKA_PORT              Kafka PLAINTEXT listener (default: 29092)
#   SANALPOS_KAFKA_CONTROLLER_PORT   Kafka KRaft controller listener (default: 29093)
#   SANALPOS_PG_PORT                 PostgreSQL TCP port (default: 25432)
#   SANALPOS_KAFKA_VERSION           Kafka broker version to fetch (default: 4.1.1)

if [[ -n "${SANALPOS_INFRA_ENV_LOADED:-}" ]]; then
    return 0
fi
SANALPOS_INFRA_ENV_LOADED=1

SANALPOS_INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
SANALPOS_REPO_ROOT="$(cd "$SANALPOS_INFRA_DIR/../.." && pwd -P)"

: "${SANALPOS_STATE_DIR:=$SANALPOS_REPO_ROOT/.state}"
: "${SANALPOS_KAFKA_PORT:=29092}"
: "${SANALPOS_KAFKA_CONTROLLER_PORT:=29093}"
: "${SANALPOS_PG_PORT:=25432}"

# Always work with an absolute state path (the daemons run from other folders).
if [[ "$SANALPOS_STATE_DIR" != /* ]]; then
    SANALPOS_STATE_DIR="$PWD/$SANALPOS_STATE_DIR"
fi
export SANALPOS_STATE_DIR SANALPOS_KAFKA_PORT SANALPOS_KAFKA_CONTROLLER_PORT SANALPOS_PG_PORT

STATE="$SANALPOS_STATE_DIR"
SANALPOS_LOG_DIR="$STATE/logs"
SANALPOS_SERVICES=(intake fraud authorization settlement notification)
# Kafka version fetched by kafka.sh (kafka-pom.xml pins the same default).
# shellcheck disable=SC2034 # used by the scripts that source this file
SANALPOS_KAFKA_VERSION="${SANALPOS_KAFKA_VERSION:-4.1.1}"

for _sp_port in "$SANALPOS_KAFKA_PORT" "$SANALPOS_KAFKA_CONTROLLER_PORT" "$SANALPOS_PG_PORT"; do
    if ! [[ "$_sp_port" =~ ^[0-9]+$ ]] || ((_sp_port < 1 || _sp_port > 65535)); then
        echo "[infra] invalid port: '$_sp_port'" >&2
        exit 2
    fi
done
unset _sp_port

log() { printf '[infra %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf '[infra] ERROR: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }
is_debian() { [[ -f /etc/debian_version ]] && command -v apt-get >/dev/null 2>&1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

ensure_state_dirs() {
    mkdir -p "$STATE" "$SANALPOS_LOG_DIR"
}

# apt_install PKG...: install Debian packages when running as root on Debian.
apt_install() {
    is_root && is_debian || return 1
    log "installing with apt-get: $*"
    if [[ -z "${SANALPOS_APT_UPDATED:-}" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        SANALPOS_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# ensure_java [maven]: make sure java (and optionally mvn) are on PATH.
ensure_java() {
    local need_mvn="${1:-}" missing=()
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    if [[ "$need_mvn" == maven ]] && ! command -v mvn >/dev/null 2>&1; then
        missing+=(maven)
    fi
    ((${#missing[@]} == 0)) && return 0
    if ! apt_install "${missing[@]}"; then
        die "missing tools: ${missing[*]}. Install Java 17+ (java) and Maven 3 (mvn), e.g. 'apt-get install -y openjdk-17-jre-headless maven'."
    fi
    command -v java >/dev/null 2>&1 || die "java still not found after installing; install Java 17+"
    if [[ "$need_mvn" == maven ]]; then
        command -v mvn >/dev/null 2>&1 || die "mvn still not found after installing; install Maven 3"
    fi
}

# Effective endpoints: values from the environment win over the local ones.
kafka_bootstrap_effective() {
    printf '%s\n' "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$SANALPOS_KAFKA_PORT}"
}

db_url_var() { # db_url_var SVC -> INTAKE_DATABASE_URL
    printf '%s_DATABASE_URL\n' "${1^^}"
}

db_url_local() { # db_url_local SVC
    local svc="$1"
    printf 'postgresql://sanalpos_%s:sanalpos_%s@127.0.0.1:%s/sanalpos_%s\n' \
        "$svc" "$svc" "$SANALPOS_PG_PORT" "$svc"
}

db_url_effective() { # db_url_effective SVC
    local var
    var="$(db_url_var "$1")"
    if [[ -n "${!var:-}" ]]; then
        printf '%s\n' "${!var}"
    else
        db_url_local "$1"
    fi
}

# True when KAFKA_BOOTSTRAP_SERVERS comes from the environment.
kafka_external() { [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; }

# True when all five <SVC>_DATABASE_URL come from the environment.
postgres_external() {
    local svc var
    for svc in "${SANALPOS_SERVICES[@]}"; do
        var="$(db_url_var "$svc")"
        [[ -n "${!var:-}" ]] || return 1
    done
}

# Lines for `eval "$(scripts/infra/infra.sh env)"`.
print_env_exports() {
    local svc
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$(kafka_bootstrap_effective)"
    for svc in "${SANALPOS_SERVICES[@]}"; do
        printf 'export %s=%q\n' "$(db_url_var "$svc")" "$(db_url_effective "$svc")"
    done
}

# Human-readable summary of the effective endpoints.
print_endpoints() {
    local svc src
    if kafka_external; then src="environment"; else src="local"; fi
    printf '%-27s: %s\n' "SANALPOS_STATE_DIR" "$STATE"
    printf '%-27s: %s (%s)\n' "KAFKA_BOOTSTRAP_SERVERS" "$(kafka_bootstrap_effective)" "$src"
    for svc in "${SANALPOS_SERVICES[@]}"; do
        local var
        var="$(db_url_var "$svc")"
        if [[ -n "${!var:-}" ]]; then src="environment"; else src="local"; fi
        printf '%-27s: %s (%s)\n' "$var" "$(db_url_effective "$svc")" "$src"
    done
}
