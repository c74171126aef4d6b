"""Users and their API keys: every request acts as the user its key belongs to."""
