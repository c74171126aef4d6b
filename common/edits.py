"""A change of a name and a description, as a PATCH says it (services and metrics)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NameEdit:
    """`name` None leaves the name; `set_description` tells "clear it" (a null sent, with
    `description` None) from "leave it" (nothing sent)."""

    name: str | None = None
    description: str | None = None
    set_description: bool = False

    def params(self) -> dict[str, str | bool | None]:
        """As the UPDATE statements take it ($name, $description, $set_description)."""
        return {
            "name": self.name,
            "description": self.description,
            "set_description": self.set_description,
        }
