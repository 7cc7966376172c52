"""Reading settings given as text (environment variables)."""

from __future__ import annotations


def comma_separated(raw: str | None) -> list[str]:
    """The items of a comma-separated setting, stripped, empty ones left out."""
    return [item.strip() for item in (raw or "").split(",") if item.strip()]
