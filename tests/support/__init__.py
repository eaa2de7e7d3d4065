"""Shared test support: one helper per job, for every tier (import from here, never from a conftest).

Modules (import the module you need, e.g. ``from tests.support.canary import TEST_PASSWORD``):

* ``canary``   — ``TEST_PASSWORD`` (the test registry's password: the leak canary), ``TEST_REGISTRY_USER``,
  ``TEST_REGISTRY_PORT``, ``IN_CI``, ``SESSION_STARTED``.
* ``ordering`` — the ``after_all_tests`` marker: a test so marked runs after every other test of the session
  (the leak scan in tests/faults/test_no_leaks.py), whatever its file name.

Fixtures stay in the conftest files (``aws_env``, ``docker_host``, ``registry``, ``base_image``,
``archive_server``, the session-wide ``local_stack``, ...); plain helpers live here.
"""
