"""Authentication: citizen one-time codes (or OpenID Connect), staff password + TOTP,
agency API keys, login sessions, and the ``Viewer`` every authenticated request carries."""
