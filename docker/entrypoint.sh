#!/bin/sh
# The image's entrypoint: migrate the database to the latest revision, then run the command
# (gunicorn by default; `tiss-gateway worker` for a delivery worker). Several containers may
# start at once: the migration takes turns (PostgreSQL advisory lock) and the later ones find
# the schema current. Set TISS_GATEWAY_MIGRATE=0 to skip it (a database migrated by someone else).
set -e
if [ "${TISS_GATEWAY_MIGRATE:-1}" != "0" ]; then
    tiss-gateway db upgrade
fi
exec "$@"
