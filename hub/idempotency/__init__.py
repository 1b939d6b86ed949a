"""``Idempotency-Key`` on agency POSTs and PATCHes: one effect per key, the answer replayed."""
