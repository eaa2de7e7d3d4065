"""CloudWatch Embedded Metric Format: the specification's checks, for the worker's metric documents."""

from __future__ import annotations

import numbers
from typing import Any

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_problems(doc: Any) -> list[str]:
    """Departures of ``doc`` from the EMF specification (empty when CloudWatch would extract its metrics)."""
    problems: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
        return ["no _aws object at the root"]
    meta = doc["_aws"]
    if not isinstance(meta.get("Timestamp"), int) or isinstance(meta.get("Timestamp"), bool) or meta["Timestamp"] < 0:
        problems.append("_aws.Timestamp must be a non-negative integer (ms since the epoch)")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return problems + ["_aws.CloudWatchMetrics must be a non-empty array"]
    for index, directive in enumerate(directives):
        problems += _directive_problems(doc, directive, f"directive {index}")
    return problems


def _directive_problems(doc: dict[str, Any], directive: Any, where: str) -> list[str]:
    """Departures of one CloudWatchMetrics directive (and the root values it names) from the specification."""
    if not isinstance(directive, dict) or set(directive) != {"Namespace", "Dimensions", "Metrics"}:
        return [f"{where}: must have exactly Namespace, Dimensions, Metrics"]
    problems: list[str] = []
    if not isinstance(directive["Namespace"], str) or not 1 <= len(directive["Namespace"]) <= 1024:
        problems.append(f"{where}: bad Namespace")
    dimension_names: set[str] = set()
    for dimension_set in directive["Dimensions"]:
        if not isinstance(dimension_set, list) or len(dimension_set) > 30:
            problems.append(f"{where}: a dimension set must be an array of at most 30 names")
            continue
        for name in dimension_set:
            value = doc.get(name)
            if not isinstance(value, str) or not 1 <= len(value) <= 1024:
                problems.append(f"{where}: dimension {name!r} has no string value at the root")
            dimension_names.add(name)
    if not isinstance(directive["Metrics"], list) or not 1 <= len(directive["Metrics"]) <= 100:
        return problems + [f"{where}: Metrics must hold 1 to 100 definitions"]
    for definition in directive["Metrics"]:
        problems += _metric_problems(doc, definition, dimension_names, where)
    return problems


def _metric_problems(doc: dict[str, Any], definition: Any, dimension_names: set[str], where: str) -> list[str]:
    """Departures of one metric definition (and its root value) from the specification."""
    name = definition.get("Name") if isinstance(definition, dict) else None
    if not isinstance(name, str) or not 1 <= len(name) <= 1024:
        return [f"{where}: a metric definition without a Name"]
    problems: list[str] = []
    if set(definition) - {"Name", "Unit", "StorageResolution"}:
        problems.append(f"{where}: metric {name}: unknown members")
    if "Unit" in definition and definition["Unit"] not in EMF_UNITS:
        problems.append(f"{where}: metric {name}: unit {definition['Unit']!r}")
    if name in dimension_names:
        problems.append(f"{where}: {name} is both a metric and a dimension")
    value = doc.get(name)
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        problems.append(f"{where}: metric {name} has no numeric value at the root")
    return problems


def dimension_values(doc: dict[str, Any]) -> dict[str, str]:
    """Every dimension name the document's directives use, with its value."""
    return {
        name: doc[name]
        for directive in doc["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
        for name in dimension_set
    }
