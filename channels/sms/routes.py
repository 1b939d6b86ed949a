"""Twilio's webhooks: inbound texts and delivery status callbacks, signature-checked."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["sms"])
