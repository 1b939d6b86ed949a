"""The built-in SMTP receiver (`hub mail-receiver`), on aiosmtpd."""

from __future__ import annotations

from hub.config import Settings


def run_receiver(settings: Settings) -> None:
    raise NotImplementedError("the mail receiver is being built (issue #3)")
