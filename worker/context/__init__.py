"""Build contexts: opening untrusted archives with bounds and sanitising them into a safe tar."""
