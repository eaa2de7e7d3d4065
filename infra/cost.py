"""What a boatyard stack costs: idle per month, and per build-minute by instance type.

Prices are parameters (nothing is fetched): pass your region's current prices,
or read the example figures below only as an illustration.

    python infra/cost.py                                  # the example prices
    python infra/cost.py --hourly c6i.xlarge=0.17:0.07 --hourly m7i.xlarge=0.2016:0.09 \\
        --concurrency 2 --warm-pool 1 --volume-gib 100 --builds-per-day 40 --build-minutes 4

``--hourly TYPE=ON_DEMAND[:SPOT]`` is $/hour.  The model (infra/README.md, *Cost*):

- idle (no build for longer than the quiet period, ``WorkerMinSize`` 0): CloudWatch
  alarms (per metric in each alarm), the dashboard, the KMS key, the EBS volumes
  of warm-pool hosts (stopped instances pay only storage), and hosts kept by
  ``WorkerMinSize``; API Gateway, Lambda, SQS, DynamoDB on demand and S3 cost
  (next to) nothing without requests;
- a build-minute on a host with ``concurrency`` slots: hourly price / 60 /
  concurrency when the slots are busy, plus the EBS volume while the host runs;
- each idle→busy cycle also pays the boot (billed while the host bootstraps)
  and the quiet period before scale-in.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

# Example figures only (us-east-1 list prices seen in 2025, spot varies by the hour): pass your own.
EXAMPLE_HOURLY = {
    "c6i.xlarge": (0.170, 0.070),
    "c6a.xlarge": (0.153, 0.065),
    "c5.xlarge": (0.170, 0.075),
    "c6i.2xlarge": (0.340, 0.140),
}
EXAMPLE_GP3_GIB_MONTH = 0.08
EXAMPLE_ALARM_METRIC_MONTH = 0.10  # standard-resolution alarm, per metric it evaluates
EXAMPLE_DASHBOARD_MONTH = 3.00  # beyond the free ones
EXAMPLE_KMS_KEY_MONTH = 1.00
EXAMPLE_CUSTOM_METRIC_MONTH = 0.30  # EMF metrics, only in months they receive data
# metrics evaluated by the stack's alarms (infra/resources.yaml): QueueWithoutHosts 3, QueueIdle 2, DLQ 1,
# OldestJobAge 1, BuildFailureRate 2, NoWorkerInService 2, Api5xx 2, and the target tracking alarm 2
ALARM_METRICS = 15
# EMF metrics with data in a busy month: 8 per-stack metrics + the outcome combinations actually seen (~15)
BUSY_CUSTOM_METRICS = 23
HOURS_PER_MONTH = 730


@dataclasses.dataclass(frozen=True)
class Prices:
    """Everything the model needs, in dollars."""

    hourly: dict[str, tuple[float, float | None]]  # instance type -> (on-demand, spot) per hour
    gp3_gib_month: float = EXAMPLE_GP3_GIB_MONTH
    alarm_metric_month: float = EXAMPLE_ALARM_METRIC_MONTH
    dashboard_month: float = EXAMPLE_DASHBOARD_MONTH
    kms_key_month: float = EXAMPLE_KMS_KEY_MONTH
    custom_metric_month: float = EXAMPLE_CUSTOM_METRIC_MONTH


@dataclasses.dataclass(frozen=True)
class Fleet:
    """The stack's parameters that matter for cost."""

    concurrency: int = 2  # WorkerConcurrency
    volume_gib: int = 100  # WorkerVolumeGiB
    warm_pool: int = 0  # WarmPoolSize
    min_size: int = 0  # WorkerMinSize
    quiet_minutes: float = 15  # ScaleInQuietMinutes
    boot_minutes: float = 5  # billed bootstrap of a cold host (infra/README.md, first-build latency)


def idle_month(prices: Prices, fleet: Fleet, instance_type: str, spot: bool = False) -> float:
    """Dollars per month with no build at all."""
    on_demand, spot_price = prices.hourly[instance_type]
    hourly = spot_price if spot and spot_price is not None else on_demand
    always_on = fleet.min_size * (hourly * HOURS_PER_MONTH + fleet.volume_gib * prices.gp3_gib_month)
    return round(
        ALARM_METRICS * prices.alarm_metric_month
        + prices.dashboard_month
        + prices.kms_key_month
        + fleet.warm_pool * fleet.volume_gib * prices.gp3_gib_month
        + always_on,
        2,
    )


def build_minute(prices: Prices, fleet: Fleet, instance_type: str, spot: bool = False) -> float:
    """Dollars per build-minute with every slot of the host busy (compute + its volume)."""
    on_demand, spot_price = prices.hourly[instance_type]
    hourly = spot_price if spot and spot_price is not None else on_demand
    volume_hourly = fleet.volume_gib * prices.gp3_gib_month / HOURS_PER_MONTH
    return (hourly + volume_hourly) / 60 / max(1, fleet.concurrency)


def wake_cycle(prices: Prices, fleet: Fleet, instance_type: str, spot: bool = False) -> float:
    """Dollars of one idle→busy→idle cycle beyond the build-minutes: the boot and the quiet period."""
    on_demand, spot_price = prices.hourly[instance_type]
    hourly = spot_price if spot and spot_price is not None else on_demand
    return hourly / 60 * (fleet.boot_minutes + fleet.quiet_minutes)


def month(prices: Prices, fleet: Fleet, instance_type: str, builds_per_day: float, build_minutes: float,
          wake_cycles_per_day: float, spot: bool = False) -> float:  # fmt: skip
    """Dollars per month for a steady load."""
    builds = builds_per_day * 30 * build_minutes * build_minute(prices, fleet, instance_type, spot)
    wakes = wake_cycles_per_day * 30 * wake_cycle(prices, fleet, instance_type, spot)
    metrics = BUSY_CUSTOM_METRICS * prices.custom_metric_month if builds_per_day > 0 else 0.0
    return round(idle_month(prices, fleet, instance_type, spot) + builds + wakes + metrics, 2)


def _hourly(text: str) -> tuple[str, tuple[float, float | None]]:
    name, _, prices = text.partition("=")
    on_demand, _, spot = prices.partition(":")
    try:
        return name.strip(), (float(on_demand), float(spot) if spot else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hourly wants TYPE=ON_DEMAND[:SPOT] in $/hour, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Print the idle cost, the cost per build-minute by instance type, and a monthly estimate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hourly", type=_hourly, action="append", help="TYPE=ON_DEMAND[:SPOT] $/hour (repeatable)")
    parser.add_argument("--gp3", type=float, default=EXAMPLE_GP3_GIB_MONTH, help="gp3 $/GiB-month")
    parser.add_argument("--alarm-metric", type=float, default=EXAMPLE_ALARM_METRIC_MONTH, help="$/alarm metric-month")
    parser.add_argument(
        "--dashboard", type=float, default=EXAMPLE_DASHBOARD_MONTH, help="$/dashboard-month (0 if free)"
    )
    parser.add_argument("--kms-key", type=float, default=EXAMPLE_KMS_KEY_MONTH, help="$/KMS key-month")
    parser.add_argument(
        "--custom-metric", type=float, default=EXAMPLE_CUSTOM_METRIC_MONTH, help="$/custom metric-month"
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--volume-gib", type=int, default=100)
    parser.add_argument("--warm-pool", type=int, default=0)
    parser.add_argument("--min-size", type=int, default=0)
    parser.add_argument("--quiet-minutes", type=float, default=15)
    parser.add_argument("--boot-minutes", type=float, default=5)
    parser.add_argument("--builds-per-day", type=float, default=40)
    parser.add_argument("--build-minutes", type=float, default=4)
    parser.add_argument("--wake-cycles-per-day", type=float, default=3, help="idle→busy→idle cycles a day")
    args = parser.parse_args(argv)
    hourly = dict(args.hourly) if args.hourly else dict(EXAMPLE_HOURLY)
    prices = Prices(hourly, args.gp3, args.alarm_metric, args.dashboard, args.kms_key, args.custom_metric)
    fleet = Fleet(
        args.concurrency, args.volume_gib, args.warm_pool, args.min_size, args.quiet_minutes, args.boot_minutes
    )
    if not args.hourly:
        print("(example prices: pass --hourly TYPE=ON_DEMAND:SPOT with your region's current prices)\n")
    first = next(iter(hourly))
    print(f"idle, per month: ${idle_month(prices, fleet, first):.2f}"
          f"  (alarms, dashboard, KMS key, {fleet.warm_pool} warm-pool volume(s), {fleet.min_size} always-on host(s))")  # fmt: skip
    print(f"\nper build-minute ({fleet.concurrency} builds per host), and a month of "
          f"{args.builds_per_day:g} builds/day x {args.build_minutes:g} min, {args.wake_cycles_per_day:g} wake-ups/day:")  # fmt: skip
    print(f"{'instance type':<16}{'on-demand':>12}{'spot':>12}{'month OD':>12}{'month spot':>12}")
    for name, (_od, spot) in hourly.items():
        cells = [f"${build_minute(prices, fleet, name):.5f}"]
        cells.append(f"${build_minute(prices, fleet, name, True):.5f}" if spot is not None else "-")
        cells.append(
            f"${month(prices, fleet, name, args.builds_per_day, args.build_minutes, args.wake_cycles_per_day):.2f}"
        )
        cells.append(
            f"${month(prices, fleet, name, args.builds_per_day, args.build_minutes, args.wake_cycles_per_day, True):.2f}"
            if spot is not None and fleet.warm_pool == 0  # a warm pool means on-demand hosts only
            else "-"
        )
        print(f"{name:<16}" + "".join(cell.rjust(12) for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
