"""Health: ``/healthz`` (the process answers), ``/readyz`` (what it depends on answers), and the
probe the container health checks run (``python -m hub.health``)."""
