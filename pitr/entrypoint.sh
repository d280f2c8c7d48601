#!/bin/sh
# The database server's entrypoint in the PITR image: the official one, after pitr/guard.py has
# checked that an empty data directory is a first start and not a lost one (docs/pitr.md).
# The agent and the one-off containers run other commands and go straight through.
set -eu
if [ "${1:-}" = postgres ] && [ -n "${PITR_STANZA:-}" ]; then
    # As the server's own user, as archive-push runs: pgBackRest files it writes stay its own.
    if [ "$(id -u)" = 0 ]; then
        gosu postgres python3 -m pitr guard --stanza "$PITR_STANZA"
    else
        python3 -m pitr guard --stanza "$PITR_STANZA"
    fi
fi
exec docker-entrypoint.sh "$@"
