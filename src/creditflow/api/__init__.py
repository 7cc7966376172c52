"""The HTTP API (`/v1/...`): `create_app(ctx, settings)` in `app.py` builds it."""
