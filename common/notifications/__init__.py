"""Notifications: incident changes delivered to people's webhooks, signed, at least once."""
