"""The HTTP API of API.md: `create_app(ctx, settings)` builds it."""
