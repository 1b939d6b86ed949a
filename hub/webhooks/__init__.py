"""Agency webhooks: subscriptions, and signed CloudEvents delivered with retries."""
