"""The build runtime check, the per-build limits sent to the daemon, and the settings that feed them (issue 17)."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.settings import GiB, MiB, load_settings
from devstack.services import sandboxed_daemon_config, write_daemon_config
from worker.build import limits
from worker.build.limits import RuntimeUnavailable, check_runtime

GVISOR_INFO = {"Runtimes": {"runc": {"path": "runc"}, "runsc": {"path": "/usr/bin/runsc"}}, "DefaultRuntime": "runsc"}


def test_runtime_check_passes_when_the_configured_runtime_is_the_default():
    check_runtime(GVISOR_INFO, "runsc")
    check_runtime({**GVISOR_INFO, "DefaultRuntime": "runc"}, "runc")


def test_runtime_check_refuses_a_missing_runtime_with_what_to_do():
    with pytest.raises(RuntimeUnavailable) as caught:
        check_runtime({"Runtimes": {"runc": {}}, "DefaultRuntime": "runc"}, "runsc", "unix:///x.sock")
    text = str(caught.value)
    assert "unix:///x.sock has no runtime 'runsc' (it has runc)" in text
    assert "default-runtime" in text and "BOATYARD_BUILD_RUNTIME=runc" in text


def test_runtime_check_refuses_a_registered_runtime_that_is_not_the_default():
    """The classic builder runs RUN steps with the daemon's default runtime: registered is not enough."""
    with pytest.raises(RuntimeUnavailable, match="by default, not 'runsc'"):
        check_runtime({**GVISOR_INFO, "DefaultRuntime": "runc"}, "runsc")


def test_build_params_from_the_defaults():
    params = limits.build_params(load_settings({}))
    assert params["memory"] == params["memswap"] == 2 * GiB
    assert params["cpushares"] == 1024
    assert (params["cpuperiod"], params["cpuquota"]) == (100_000, 100_000)
    assert json.loads(params["ulimits"]) == [{"Name": "nproc", "Soft": 1024, "Hard": 1024}]


def test_build_params_from_settings_and_zero_means_no_limit():
    settings = load_settings(
        {
            "BOATYARD_BUILD_MEMORY_BYTES": str(512 * MiB),
            "BOATYARD_BUILD_MEMORY_SWAP_BYTES": str(GiB),
            "BOATYARD_BUILD_CPU_SHARES": "256",
            "BOATYARD_BUILD_CPUS": "0.5",
            "BOATYARD_BUILD_PIDS_LIMIT": "100",
        }
    )
    params = limits.build_params(settings)
    assert (params["memory"], params["memswap"], params["cpushares"]) == (512 * MiB, GiB, 256)
    assert params["cpuquota"] == 50_000
    assert json.loads(params["ulimits"])[0]["Hard"] == 100
    none = load_settings({f"BOATYARD_BUILD_{k}": "0" for k in ("MEMORY_BYTES", "CPU_SHARES", "CPUS", "PIDS_LIMIT")})
    assert limits.build_params(none) == {}


def test_swap_below_memory_is_raised_to_memory():
    settings = load_settings({"BOATYARD_BUILD_MEMORY_BYTES": str(GiB), "BOATYARD_BUILD_MEMORY_SWAP_BYTES": "1"})
    assert limits.build_params(settings)["memswap"] == GiB


def test_a_killed_step_names_the_memory_limit():
    settings = load_settings({"BOATYARD_BUILD_MEMORY_BYTES": str(64 * MiB)})
    killed = "The command '/bin/sh -c x' returned a non-zero code: 137"
    assert "build memory limit of 64 MiB" in limits.explain_failure(killed, settings)
    other = "The command '/bin/sh -c x' returned a non-zero code: 1"
    assert limits.explain_failure(other, settings) == other


def test_image_size_limit():
    settings = load_settings({"BOATYARD_MAX_IMAGE_BYTES": str(100 * MiB)})
    assert limits.check_image_size(100 * MiB, settings) is None
    assert "over the limit of 100 MiB" in (limits.check_image_size(100 * MiB + 1, settings) or "")


@pytest.mark.parametrize("value", ["host", "HOST", " host "])
def test_build_network_host_is_refused(value):
    with pytest.raises(ValueError, match="BOATYARD_BUILD_NETWORK=host is refused"):
        load_settings({"BOATYARD_BUILD_NETWORK": value})


def test_build_network_and_runtime_settings():
    assert load_settings({"BOATYARD_BUILD_NETWORK": "none"}).build_network == "none"
    assert load_settings({}).build_runtime == "runsc"
    assert load_settings({"BOATYARD_BUILD_RUNTIME": "runc"}).build_runtime == "runc"
    with pytest.raises(ValueError, match="BOATYARD_BUILD_RUNTIME"):
        load_settings({"BOATYARD_BUILD_RUNTIME": "runc; rm -rf /"})


def test_daemon_config_registers_gvisor_as_default_and_keeps_other_keys():
    current = {"log-driver": "json-file", "runtimes": {"other": {"path": "/x"}}, "default-runtime": "runc"}
    config = sandboxed_daemon_config(current, "/usr/bin/runsc")
    assert config["default-runtime"] == "runsc"
    assert config["runtimes"]["runsc"] == {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}
    assert config["runtimes"]["other"] == {"path": "/x"} and config["log-driver"] == "json-file"
    assert sandboxed_daemon_config(current, None) == current  # no runsc installed: unchanged


def test_write_daemon_config_is_idempotent(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    assert write_daemon_config(path, runsc="/usr/bin/runsc") is True
    assert write_daemon_config(path, runsc="/usr/bin/runsc") is False
    written = json.loads(path.read_text())
    assert written["debug"] is True and written["default-runtime"] == "runsc"


def test_a_jobs_own_memory_and_cpus_options_replace_the_defaults():
    class Plan:  # the two fields and the method of worker.build.buildplan.BuildPlan that build_params reads
        memory, cpus = 512 * MiB, 0.5

        def extra_params(self) -> dict:
            return {"cpuperiod": "100000", "cpuquota": "50000"}

    params = limits.build_params(load_settings({}), Plan())
    assert "memory" not in params and "memswap" not in params  # the plan's container_limits carry them
    assert (params["cpuperiod"], params["cpuquota"]) == ("100000", "50000")
    assert "ulimits" in params and params["cpushares"] == 1024
