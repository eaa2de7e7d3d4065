"""Running jobs: the poll loop, one delivery's runner, heartbeat, abort control, metrics, spot drain."""
