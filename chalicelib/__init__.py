"""boatyard's service code in three layers, every import pointing down (tests/unit/test_layering.py).

* :mod:`chalicelib.api` — the HTTP edge, used by app.py only;
* :mod:`chalicelib.stores` — storage and its AWS clients, used by the API and the worker;
* :mod:`chalicelib.domain` — the model and its rules, used by everything.

See docs/layout.md.
"""
