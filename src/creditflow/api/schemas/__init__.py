"""Request and response schemas of the HTTP API (Pydantic 2). Requests refuse unknown fields."""
