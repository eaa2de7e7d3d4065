"""Shared test support: one helper per job for every tier.  Import from here, never from a conftest module
and never from another test module; fixtures stay in the conftest files.

Modules (import the one you need, e.g. ``from tests.support.http_jobs import submit, wait_terminal``):

* ``canary``      — ``TEST_PASSWORD`` (the test registry's password: the leak canary), ``TEST_REGISTRY_USER``,
  ``TEST_REGISTRY_PORT``, ``IN_CI``, ``SESSION_STARTED``.
* ``waiting``     — ``wait_until(predicate, timeout, what, interval=0.1)``: the one way to wait for something
  observable (never a fixed ``time.sleep``).
* ``http_jobs``   — jobs over real HTTP against a stack: ``submit``, ``status``, ``logs`` (all pages),
  ``wait_phase``, ``wait_terminal`` (answer + ``_seen`` statuses + ``_phases``), ``credentials(registry)``,
  ``unique_image(registry_host, name)``, ``TERMINAL_PREFIXES``.
* ``worker_jobs`` — jobs for in-process workers on moto: ``submit`` (create + context + seal + enqueue, as the
  API does), ``run_until_terminal(worker, job_id)``, ``full_log``, ``status``, ``image_for``, ``set_env``.
* ``archives``    — ``make_tar(files, gz=True, top="")`` (the tar builder for regular files), ``dockerfile_tar``,
  ``tar_members``; ``entries_tar(entries, gz=True)`` (any member type), ``LIMITS`` and ``OneWayStream`` for the
  archive sanitizer's tests.
* ``images``      — ``pull_and_run(docker_host_or_api, registry, image, command=None, digest=None)``: pull what
  a build pushed (after the worker removed its tag from the host) and run it.
* ``stacks``      — ``start_stack(name, workers, env, docker_host)`` on free ports, ``scan_stack``, ``stop_stack``
  (scan, record leaks, stop), ``StackHandle``.  Prefer the session's shared ``local_stack`` fixture; start a
  stack of your own only to break it or to run it with other settings.
* ``faults``      — fault injection (``PrivateDockerd``, ``OwnRegistry``, ``inject_aws_errors``), ``report``,
  and the leak scanners (``find_secret``, ``scan_aws``, ``scan_files``, ``scan_docker``, ``record_leaks``).
* ``ordering``    — the ``after_all_tests`` marker: a test so marked runs after every other test of the
  session (the leak scan, tests/faults/test_no_leaks.py), whatever its file name.
* ``browser``     — Chromium path and flags, ``DESKTOP`` / ``PHONE`` viewports, ``screenshot(page, name)``; the
  shared form steps ``open_ui(page, fake)``, ``fill_common(page, image)``, ``error_of(page, field)``, ``PASSWORD``.
* ``fake_builders`` — ``UntilAbortedBuilder`` and ``QuickBuilder``: builders without Docker for in-process workers.
* ``openapi``     — ``DOC_PATH``, ``schema_validator(doc, name)``, ``check_answer(doc, path, method, response)``
  (a real answer matches the schema documented for it).
* ``emf``         — ``emf_problems(doc)`` (CloudWatch's EMF rules), ``dimension_values(doc)``.
* ``infra``       — ``ROOT``, ``INFRA`` and ``check_template`` (infra/check_template.py loaded as a module).

Session fixtures (tests/conftest.py): ``aws_env`` (moto in process), ``docker_host``, ``registry``,
``base_image``, ``archive_server``, ``local_stack`` (one stack for tests/e2e, tests/cli, tests/browser and the
faults that do not break it), ``test_password``.
"""
