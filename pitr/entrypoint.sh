#!/bin/sh
# The database server's entrypoint in the PITR image: the official one, after pitr/guard.py has
# checked that an empty data directory is a first start and not a lost one (docs/pitr.md).
# The agent and the one-off containers run other commands and go straight through.
set -eu
# As the server's own user, as archive-push runs: pgBackRest files it writes stay its own.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi
}
# Beside an off-host repository: pgBackRest refuses a private key others may read, and the
# configuration's files are readable by all, so the keys are copied where only this container's
# user reads them (pitr/tls.py), before anything (the guard first) reads them. (PITR_CONFIG_DIR:
# where the tests of this script put the configuration.)
if ls "${PITR_CONFIG_DIR:-/etc/pgbackrest}"/*.key >/dev/null 2>&1; then
    as_postgres python3 -m pitr install-keys
fi
if [ "${1:-}" = postgres ] && [ -n "${PITR_STANZA:-}" ]; then
    as_postgres python3 -m pitr guard --stanza "$PITR_STANZA"
fi
exec docker-entrypoint.sh "$@"
