"""boatyard's build worker: ``python -m worker``.

It long-polls the job queue, claims each job with a lease (``chalicelib.stores.jobs``),
fetches the build context (S3, a tarball URL through an SSRF guard, or a GitHub
archive), sanitises it into a local tar, builds it with the Docker daemon,
pushes the image with the job's own credentials, and records every phase
change and the build log in DynamoDB.

Packages and modules, one job each:

* :mod:`worker.job.loop` — the poll loop, concurrency, shutdown, dead-letter sweep
* :mod:`worker.job.runner` — one delivery from claim to a terminal phase
* :mod:`worker.job.heartbeat` — visibility and lease renewal while a job runs
* :mod:`worker.job.control` — abort signalling (timeout, lost lease, shutdown)
* :mod:`worker.job.metrics`, :mod:`worker.job.spot` — EMF metrics; the spot-interruption drain
* :mod:`worker.sources` — the context fetchers; :mod:`worker.context.archive` the tar sanitiser
  (over :mod:`worker.context.tarstream`, the bounded tar reader)
* :mod:`worker.netguard` — the SSRF guard for every URL the worker fetches
* :mod:`worker.build.builder` — docker build / push / cleanup with the low-level API;
  :mod:`worker.build.buildkit` the BuildKit engine, :mod:`worker.build.engines` the choice between them
* :mod:`worker.build.images` — a job's private local tags and the registry auths its build may send
* :mod:`worker.redact` — keeping credentials out of every log
"""
