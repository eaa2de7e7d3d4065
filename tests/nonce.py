"""A word unique to this test session, for RUN steps that must really run.

Build hosts keep their layer cache between jobs (clean-up removes a job's tag
with ``noprune``), and CI reuses the machine's Docker data: a RUN line that a
previous session completed would be served from cache, so a test that kills,
times or counts that step would see nothing run. Prefix such a step with
``RUN : {RUN_NONCE} && ...`` (``:`` is the shell's no-op; the output is unchanged).
"""

import uuid

RUN_NONCE = f"session-{uuid.uuid4().hex[:12]}"
