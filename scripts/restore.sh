#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and a document store.
#
#   createdb hub   # or: docker compose up -d postgres (a fresh volume)
#   HUB_DATABASE_URL=postgresql+asyncpg://hub:…@db/hub HUB_DOCUMENTS_DIR=/srv/hub/documents \
#       scripts/restore.sh /backups/hub-2026-11-28
#   hub migrate    # when the backup came from an older version of the hub
#
# Stop the hub's processes first. The files go back before the database, so that no row
# is ever visible without its file; files already in the store are the same bytes (they are
# named by checksum) and are left alone. The database is restored in one transaction: it
# ends restored or untouched. Last, every document row is checked for its file.
set -euo pipefail

source_dir=${1:?usage: scripts/restore.sh BACKUP_DIR}
url=${HUB_DATABASE_URL:?set HUB_DATABASE_URL to the (empty) PostgreSQL database to restore into}
documents=${HUB_DOCUMENTS_DIR:-${HUB_DATA_DIR:-var}/documents}

source "$(dirname "$0")/pg_env.sh"

(cd "$source_dir" && sha256sum --check --quiet SHA256SUMS) || {
    echo "Error: $source_dir does not match its SHA256SUMS; the backup is damaged." >&2
    exit 1
}

tables=$(psql --no-psqlrc --tuples-only --no-align --command \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
if [ "$tables" != "0" ]; then
    echo "Error: database $PGDATABASE on $PGHOST already has $tables tables; restore into an" \
        "empty database (createdb), so that nothing of it mixes with the backup." >&2
    exit 2
fi

mkdir -p "$documents"
tar -C "$documents" --skip-old-files -xf "$source_dir/documents.tar"

pg_restore --no-owner --no-privileges --single-transaction --exit-on-error \
    --dbname="$PGDATABASE" "$source_dir/database.dump"

missing=0
while IFS= read -r key; do
    if [ ! -f "$documents/$key" ]; then
        echo "Missing file for a document: $documents/$key" >&2
        missing=$((missing + 1))
    fi
done < <(psql --no-psqlrc --tuples-only --no-align --command "SELECT storage_key FROM document")
if [ "$missing" -ne 0 ]; then
    echo "Error: $missing documents have no file in $documents." >&2
    exit 1
fi
rows=$(psql --no-psqlrc --tuples-only --no-align --command "SELECT count(*) FROM document")
echo "Restored database $PGDATABASE on $PGHOST; all $rows documents have their files."
