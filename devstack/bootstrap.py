"""``python -m devstack.bootstrap``: create the table, bucket, queues and key on the endpoint in the environment."""

from __future__ import annotations

import json

from devstack.resources import ensure_resources


def main() -> None:
    """Create the resources and print their names as JSON."""
    print(json.dumps(ensure_resources()))


if __name__ == "__main__":
    main()
