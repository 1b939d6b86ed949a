"""Rate limits per agency API key: a token bucket per key, in memory or shared through Redis."""
