"""In-process handler latency: ``python -m bench.scenarios.api_inproc <requests> <runs>`` prints JSON.

Runs boatyard's Chalice app with ``chalice.test.Client`` inside
``moto.mock_aws`` (no network, no servers): the figure is the handler's own
cost plus moto's in-memory AWS, which stands in for AWS here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_key] = _value
for _key in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "BOATYARD_QUEUE_URL"):
    os.environ.pop(_key, None)


def _percentiles(samples: list[float]) -> dict[str, float]:
    from bench.stats import percentile

    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}


def _timed(client, path: str, count: int, headers: dict | None = None) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        answer = client.http.get(path, headers=headers or {})
        samples.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.body
    return samples


def main(requests_per_run: int, runs: int) -> dict:
    """Time each handler ``requests_per_run`` times, ``runs`` times; medians of the per-run p50/p99."""
    from chalice.test import Client
    from moto import mock_aws

    from bench.stats import median

    os.environ.setdefault("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "true")  # the image names a 127.0.0.1 registry
    with mock_aws():
        from app import create_app
        from chalicelib.domain.settings import load_settings
        from chalicelib.stores.services import Services
        from devstack.resources import ensure_resources

        settings = load_settings()
        services = Services(settings)
        ensure_resources(settings, services.clients)
        open_app = create_app(services)
        # the same stores behind a second app whose routes carry the authorizer (BOATYARD_AUTH=keys)
        keys_settings = dataclasses.replace(settings, auth_mode="keys")
        keys_app = create_app(Services(keys_settings, services.clients))

        body = json.dumps(
            {
                "image_name": "127.0.0.1:5060/bench/inproc:latest",
                "dockerfile": 'FROM scratch\nCMD ["true"]\n',
                "username": "bench",
                "password": "not-a-real-password",
                "email": "bench@example.com",
            }
        )
        headers = {"Content-Type": "application/json"}
        with Client(open_app) as client:
            answer = client.http.post("/api/v1/build", headers=headers, body=body)
            assert answer.status_code == 202, answer.body
            job_id = json.loads(answer.body)["JobIdentifier"]
            writer = services.logs.writer(job_id)
            text = "".join(f"{n}\n" for n in range(1, 20001))
            for offset in range(0, len(text), 4096):
                writer.write(text[offset : offset + 4096])
            writer.close()
            full = json.loads(client.http.get(f"/api/v1/{job_id}/logs?since=0").body)
            cursor = full["Next"]
            paths = {
                "status": f"/api/v1/{job_id}/status",
                "logs_full": f"/api/v1/{job_id}/logs",
                "logs_tail": f"/api/v1/{job_id}/logs?since={cursor}",
            }
            per_run: dict[str, list[dict[str, float]]] = {
                name: [] for name in (*paths, "build", "status_open", "status_keys")
            }
            token = services.apikeys.create_key("bench", "inproc")[1]
            auth = {"Authorization": f"Bearer {token}"}
            keys_client = Client(keys_app)
            answer = keys_client.http.post("/api/v1/build", headers={**headers, **auth}, body=body)
            assert answer.status_code == 202, answer.body
            keys_job = json.loads(answer.body)["JobIdentifier"]
            for _ in range(runs):
                for name, path in paths.items():
                    samples = []
                    for _ in range(requests_per_run):
                        start = time.perf_counter()
                        answer = client.http.get(path)
                        samples.append(time.perf_counter() - start)
                        assert answer.status_code == 200, answer.body
                    per_run[name].append(_percentiles(samples))
                samples = []
                for _ in range(max(requests_per_run // 3, 20)):
                    start = time.perf_counter()
                    answer = client.http.post("/api/v1/build", headers=headers, body=body)
                    samples.append(time.perf_counter() - start)
                    assert answer.status_code == 202, answer.body
                per_run["build"].append(_percentiles(samples))
                # the authorizer's cost: the same status read without keys and with a key, alternating
                open_samples, keys_samples = [], []
                for _ in range(max(requests_per_run // 10, 5)):
                    keys_samples += _timed(keys_client, f"/api/v1/{keys_job}/status", 10, auth)
                    open_samples += _timed(client, paths["status"], 10)
                per_run["status_open"].append(_percentiles(open_samples))
                per_run["status_keys"].append(_percentiles(keys_samples))
    out: dict = {name: {k: median([r[k] for r in runs_]) for k in ("p50", "p99")} for name, runs_ in per_run.items()}
    out["log_kib"] = len(full["Logs"].encode()) / 1024
    out["auth_overhead_p50"] = out["status_keys"]["p50"] - out["status_open"]["p50"]
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
