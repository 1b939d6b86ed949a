# Sourced by backup.sh and restore.sh: libpq's variables (PGHOST, PGPORT, PGUSER,
# PGPASSWORD, PGDATABASE) from the SQLAlchemy URL in $url
# (postgresql+asyncpg://user:password@host:port/db), so that the password is on no command
# line.
exports=$(python3 - "$url" <<'PY'
import shlex
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1])
if not url.scheme.startswith("postgresql"):
    sys.exit("Error: HUB_DATABASE_URL is not a PostgreSQL URL; these scripts back up PostgreSQL.")
values = {
    "PGHOST": url.hostname or "localhost",
    "PGPORT": str(url.port or 5432),
    "PGUSER": unquote(url.username or ""),
    "PGPASSWORD": unquote(url.password or ""),
    "PGDATABASE": unquote(url.path.lstrip("/")),
}
for name, value in values.items():
    if value:
        print(f"export {name}={shlex.quote(value)}")
PY
)
eval "$exports"
