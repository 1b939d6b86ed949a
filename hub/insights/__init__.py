"""Insights: how the interactions of an agency go, per journey and channel, over a period."""
