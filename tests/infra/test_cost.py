"""infra/cost.py: the cost model's arithmetic, with prices passed in (nothing fetched)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.support.infra import INFRA


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("boatyard_infra_cost", INFRA / "cost.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_idle_is_alarms_dashboard_key_and_warm_pool_volumes(cost):
    prices = cost.Prices(
        {"t": (1.0, 0.25)}, gp3_gib_month=0.1, alarm_metric_month=0.1, dashboard_month=3, kms_key_month=1
    )
    assert cost.idle_month(prices, cost.Fleet(), "t") == pytest.approx(cost.ALARM_METRICS * 0.1 + 3 + 1)
    with_pool = cost.idle_month(prices, cost.Fleet(warm_pool=2, volume_gib=50), "t")
    assert with_pool == pytest.approx(cost.ALARM_METRICS * 0.1 + 3 + 1 + 2 * 50 * 0.1)
    always_on = cost.idle_month(prices, cost.Fleet(min_size=1, volume_gib=0), "t")
    assert always_on == pytest.approx(cost.ALARM_METRICS * 0.1 + 4 + 730)


def test_a_build_minute_shares_the_host_between_its_slots(cost):
    prices = cost.Prices({"t": (0.6, 0.12)}, gp3_gib_month=0)
    assert cost.build_minute(prices, cost.Fleet(concurrency=2, volume_gib=0), "t") == pytest.approx(0.005)
    assert cost.build_minute(prices, cost.Fleet(concurrency=1, volume_gib=0), "t", spot=True) == pytest.approx(0.002)
    assert cost.wake_cycle(prices, cost.Fleet(boot_minutes=5, quiet_minutes=15), "t") == pytest.approx(0.2)


def test_the_command_line_takes_prices_and_refuses_bad_ones(cost, capsys):
    assert cost.main(["--hourly", "x.large=0.5:0.2", "--builds-per-day", "0"]) == 0
    out = capsys.readouterr().out
    assert "x.large" in out and "example prices" not in out
    with pytest.raises(SystemExit):
        cost.main(["--hourly", "x.large=cheap"])
