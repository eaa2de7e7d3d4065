"""Development and test tooling: the local stack's services (not deployed)."""
