"""One botocore data loader per test process, so service models and endpoints are parsed once, not per client.

``chalicelib.stores.aws`` makes a fresh boto3 session per client (right for the service: clients are cached
for the life of the process), and every fresh session parses botocore's JSON files again (endpoints, the
service model, paginators): ~0.4 s of CPU each time a test's moto environment makes its clients, hundreds of
times a run.  The loader only reads files that do not change while the tests run, so sharing it changes
nothing a test sees; the service's own processes (stacks, workers) are not affected.
"""

from __future__ import annotations

import functools


def share_botocore_loader() -> None:
    """Make every new botocore session use one cached loader per data path (idempotent)."""
    import botocore.loaders
    import botocore.session

    if getattr(botocore.session.create_loader, "_boatyard_shared", False):
        return
    shared = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)
    shared._boatyard_shared = True  # type: ignore[attr-defined]  # our marker on the cached function (idempotence)
    botocore.session.create_loader = shared
