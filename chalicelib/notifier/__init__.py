"""Sending notifications: the guarded HTTP POST, the sender of queue messages, the local poller."""
