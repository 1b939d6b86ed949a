from tests.live.harness import clients, http, live_server, settings

__all__ = ["clients", "http", "live_server", "settings"]
