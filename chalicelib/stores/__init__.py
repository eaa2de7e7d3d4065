"""Storage and its AWS clients: jobs, logs, queue, contexts, sealing, keys, quotas. Used by the API and the worker."""
