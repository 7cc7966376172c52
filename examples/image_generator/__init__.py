"""An example host app: an image generator that bills every job in creditflow credits.

Run it with `uvicorn --factory image_generator.app:create_app` (see README.md beside this file).
"""
