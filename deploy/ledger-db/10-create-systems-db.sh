#!/bin/sh
# Run by the postgres image's entrypoint (/docker-entrypoint-initdb.d) the first time `ledger-db` starts on an empty
# volume: next to the ledger database (POSTGRES_DB) it creates the database of the demo business systems, owned by
# the same user. On an existing volume nothing here runs; create the database by hand there:
#   docker compose exec ledger-db createdb -U "$POSTGRES_USER" "$HANDOFF_SYSTEMS_DB"
set -eu

: "${HANDOFF_SYSTEMS_DB:?set HANDOFF_SYSTEMS_DB: name of the demo systems database}"

psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set db="$HANDOFF_SYSTEMS_DB" --set owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SQL
