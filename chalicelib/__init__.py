"""boatyard's domain and AWS adapters, shared by the API (app.py) and the worker."""
