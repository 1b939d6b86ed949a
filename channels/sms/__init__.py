"""The SMS channel, through Twilio's Messages API: texts out, texts and status callbacks in.

The webhook paths below are what Twilio is told to call, under ``HUB_BASE_URL``.
"""

INBOUND_PATH = "/api/sms/inbound"
STATUS_PATH = "/api/sms/status"
PROVIDER = "twilio"
