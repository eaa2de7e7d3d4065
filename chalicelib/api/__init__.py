"""The HTTP edge: request bodies, validation, error mapping, the routes' services. Used by app.py only."""
