# The hub's image: one image for every hub process — `hub serve`, `hub worker`,
# `hub mail-receiver`, `hub migrate` — chosen by the command (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A user of its own, never root. Its data folder holds the document store, which a volume
# is mounted over; a named volume takes this folder's owner when it is first created.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/hub --no-create-home hub \
 && mkdir -p /var/lib/hub/documents \
 && chown -R hub:hub /var/lib/hub

WORKDIR /app

# The dependencies first, from pyproject.toml alone, so that a change to the code does not
# reinstall them. Every dependency has a wheel for this platform: no compiler is needed.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && python -m pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# Then the hub itself. Installed in place (editable) because the page templates are found
# beside the packages, in /app/templates; compiled now because the running user may not
# write here.
COPY hub ./hub
COPY channels ./channels
COPY journeys ./journeys
COPY templates ./templates
RUN python -m pip install --no-deps -e . \
 && python -m compileall -q hub channels journeys

# Listen on every interface of the container; production refuses the development secrets,
# so a container started without its settings stops with a message naming what is missing.
ENV HUB_ENVIRONMENT=production \
    HUB_HOST=0.0.0.0 \
    HUB_PORT=8000 \
    HUB_MAIL_RECEIVER_HOST=0.0.0.0 \
    HUB_MAIL_RECEIVER_PORT=2525 \
    HUB_DATA_DIR=/var/lib/hub

USER hub
WORKDIR /var/lib/hub
EXPOSE 8000 2525

# Checks `hub serve`, the default command; compose.yaml gives the worker and the mail
# receiver checks of their own (python -m hub.health worker|mail-receiver).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "hub.health", "serve"]

ENTRYPOINT ["hub"]
CMD ["serve"]
