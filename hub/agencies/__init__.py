"""Agencies and what belongs to them: teams, staff, the register of processing activities."""
