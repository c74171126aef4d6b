"""Services: what a user monitors, and which service depends on which."""
