#!/usr/bin/env bash
# Development only: run once by the postgres image's entrypoint (docker-entrypoint-initdb.d)
# when the data volume is empty. Creates one database and one login role per service:
#   sanalpos_<svc> (role) owns sanalpos_<svc> (database); nobody else may connect to it.
# Role passwords come from the environment (SANALPOS_<SVC>_DB_PASSWORD), which
# docker-compose.yml fills from deploy/compose/dev-secrets.env. To re-run after changing
# them: `docker compose down -v` (drops the volume) and start again.
set -euo pipefail

services=(intake fraud authorization settlement notification)

for svc in "${services[@]}"; do
    var="SANALPOS_${svc^^}_DB_PASSWORD"
    password="${!var:-}"
    if [[ -z "${password}" ]]; then
        echo "postgres-init: ${var} is not set" >&2
        exit 1
    fi
    name="sanalpos_${svc}"
    echo "postgres-init: creating role and database ${name}"
    # Values go in as psql variables (:'name' quotes a literal, format(%I/%L) quotes
    # identifiers/literals), so no password ever has to be spliced into SQL text.
    psql -v ON_ERROR_STOP=1 --no-psqlrc \
        --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        --set=name="${name}" --set=password="${password}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name')
\gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'name', :'password')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name')
\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name')
\gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'name', :'name')
\gexec
SQL
done
