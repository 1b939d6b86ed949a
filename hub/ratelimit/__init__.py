"""Limits on what callers may send: the rate per agency API key (token buckets, in memory or
shared through Redis), logins per address and per client, and the size of request bodies."""
