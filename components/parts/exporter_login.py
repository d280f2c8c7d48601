"""The PostgreSQL exporter's login: a role with `pg_monitor` and nothing else, on every server.

The role is made by a script among the server's secret files (its password beside it, read
inside psql, so it is never on a command line). The image's entrypoint runs it when it
initialises an empty volume. A server whose volume was initialised before monitoring was on
(or before its password changed) never runs init scripts again: where the engine can, it runs
the same script in every new server container too (components/dynamic/exporter_role.py). The
script is idempotent: it creates the role when missing and sets its password and grants every
time.

What the role can do: log in to the `postgres` maintenance database (the service databases
grant no CONNECT to PUBLIC: their role script revokes it), read the statistics views and
settings (`pg_monitor`), at most 3 sessions at once. It owns nothing and reads no table.
"""

from __future__ import annotations

EXPORTER_USER = "exporter"
PASSWORD_FILE = "exporter-password"
SCRIPT_FILE = "create-exporter-role.sh"
MAINTENANCE_DATABASE = "postgres"
CONNECTION_LIMIT = 3


def role_script(password_path: str) -> str:
    psql = 'psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER"'
    # Constants only, nothing from outside: the password is read by psql from its file.
    return f"""# The exporter's role (components/exporter_role.py): sourced by the postgres
# entrypoint when it initialises an empty data dir, and run again by deploys; idempotent.
{psql} --dbname {MAINTENANCE_DATABASE} <<'SQL'
\\set exporter_password `cat {password_path}`
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EXPORTER_USER}') AS missing \\gset
\\if :missing
CREATE ROLE {EXPORTER_USER};
\\endif
ALTER ROLE {EXPORTER_USER} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD :'exporter_password';
GRANT pg_monitor TO {EXPORTER_USER};
SQL
"""  # noqa: S608
