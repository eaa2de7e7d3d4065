"""boatyard's build worker: ``python -m worker``.

It long-polls the job queue, claims each job with a lease (``chalicelib.jobstore``),
fetches the build context (S3, a tarball URL through an SSRF guard, or a GitHub
archive), sanitises it into a local tar, builds it with the Docker daemon,
pushes the image with the job's own credentials, and records every phase
change and the build log in DynamoDB.

Modules, one job each:

* :mod:`worker.loop` — the poll loop, concurrency, shutdown, dead-letter sweep
* :mod:`worker.runner` — one delivery from claim to a terminal phase
* :mod:`worker.heartbeat` — visibility and lease renewal while a job runs
* :mod:`worker.control` — abort signalling (timeout, lost lease, shutdown)
* :mod:`worker.sources` — the context fetchers; :mod:`worker.archive` the tar sanitiser
* :mod:`worker.netguard` — the SSRF guard for every URL the worker fetches
* :mod:`worker.builder` — docker build / push / cleanup with the low-level API
* :mod:`worker.images` — image references and their registry
* :mod:`worker.redact` — keeping credentials out of every log
"""
