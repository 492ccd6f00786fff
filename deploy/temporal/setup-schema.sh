#!/bin/sh
# One-shot job, run by the `temporal-admin-tools` service (temporalio/admin-tools image) before the server starts:
# create Temporal's two PostgreSQL databases and bring their schemas up to the version this admin-tools release
# ships. The admin-tools tag must match the server tag, so upgrading both in .env upgrades the schema first.
#
# Every step is idempotent, so the job runs on every `docker compose up`:
#   create-database        an existing database is left alone;
#   setup-schema 0.0       only creates the version tables when they are missing;
#   update-schema          applies only the versions the database does not have yet.
set -eu

: "${SQL_HOST:?set SQL_HOST: host name of the Temporal PostgreSQL}"
: "${SQL_USER:?set SQL_USER: PostgreSQL user that owns the Temporal databases}"
: "${SQL_PASSWORD:?set SQL_PASSWORD: password of SQL_USER}"
SQL_PORT="${SQL_PORT:-5432}"
SQL_PLUGIN="${SQL_PLUGIN:-postgres12}"
SCHEMA_DIR="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"

sql_tool() {
    # The password travels in SQL_PASSWORD (read by temporal-sql-tool), not on the command line.
    temporal-sql-tool --plugin "$SQL_PLUGIN" --endpoint "$SQL_HOST" --port "$SQL_PORT" --user "$SQL_USER" "$@"
}

# database name : schema directory under $SCHEMA_DIR
for pair in "${TEMPORAL_DB:-temporal}:temporal" "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}:visibility"; do
    db="${pair%%:*}"
    schema="${pair#*:}"
    echo "setup-schema: database '$db' (schema $schema) on $SQL_HOST:$SQL_PORT"
    sql_tool --database "$db" create-database
    sql_tool --database "$db" setup-schema --version 0.0
    sql_tool --database "$db" update-schema --schema-dir "$SCHEMA_DIR/$schema/versioned"
done
echo "setup-schema: done"
