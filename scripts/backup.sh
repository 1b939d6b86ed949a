#!/usr/bin/env bash
# Back up the hub: its PostgreSQL database, then its document store, into BACKUP_DIR.
#
#   HUB_DATABASE_URL=postgresql+asyncpg://hub:…@db/hub HUB_DOCUMENTS_DIR=/srv/hub/documents \
#       scripts/backup.sh /backups/hub-$(date +%F)
#
# The database goes first. The hub writes a document's file (named by its SHA-256, never
# changed afterwards) before it commits the row that points at it, so every row in the dump
# has its file in the store by the time the store is copied; files stored after the dump are
# copied too and are harmless. The other order could lose files of rows in the dump.
# The hub keeps running meanwhile: pg_dump reads one consistent snapshot.
#
# Writes database.dump (pg_dump's custom format), documents.tar and SHA256SUMS. Needs
# pg_dump (postgresql-client, of the server's major version or newer), tar and python3.
# The password never appears on a command line: it travels in PGPASSWORD.
set -euo pipefail

target=${1:?usage: scripts/backup.sh BACKUP_DIR}
url=${HUB_DATABASE_URL:?set HUB_DATABASE_URL to the PostgreSQL database to back up}
documents=${HUB_DOCUMENTS_DIR:-${HUB_DATA_DIR:-var}/documents}

source "$(dirname "$0")/pg_env.sh"

if [ -e "$target" ] && [ -n "$(ls -A "$target")" ]; then
    echo "Error: $target is not empty; give a new folder for each backup." >&2
    exit 2
fi
mkdir -p "$target"

pg_dump --format=custom --no-owner --no-privileges --file="$target/database.dump"

if [ -d "$documents" ]; then
    # tmp* are files the hub was writing when a process died; they belong to no row.
    tar -C "$documents" --exclude='./*/tmp*' -cf "$target/documents.tar" .
else
    echo "Note: no document store at $documents; backing up an empty one." >&2
    tar -cf "$target/documents.tar" -T /dev/null
fi

(cd "$target" && sha256sum database.dump documents.tar > SHA256SUMS)
files=$(tar -tf "$target/documents.tar" | grep -c -v '/$' || true)
echo "Backed up database $PGDATABASE on $PGHOST and $files stored files into $target"
