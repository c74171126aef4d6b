"""A user as the graph keeps it (its key only as a hash, never returned)."""

from datetime import datetime

from pydantic import BaseModel


class User(BaseModel):
    id: str
    name: str
    created_at: datetime
