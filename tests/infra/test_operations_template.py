"""Issue 19's wiring in infra/resources.yaml: scale to zero, spot, warm pool, alarms, dashboard, HTTPS UI.

moto's CloudFormation cannot create alarms, scaling policies, warm pools or
CloudFront resources (test_moto_stack.py lists them), so their wiring is
checked here on the template: metric names and dimensions, thresholds from
parameters, and the names the worker's EMF documents really use.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.domain.settings import load_settings
from worker.job import metrics


def _res(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _queries(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["Id"]: q for q in alarm["Metrics"]}


def _metric(query: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    metric = query["MetricStat"]["Metric"]
    return metric["Namespace"], metric["MetricName"], metric["Dimensions"]


QUEUE_DIMENSION = [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobQueue", "QueueName"]}}]
GROUP_DIMENSION = [{"Name": "AutoScalingGroupName", "Value": {"Ref": "WorkerGroup"}}]
STACK_DIMENSION = [{"Name": "Stack", "Value": {"Ref": "AWS::StackName"}}]


# ---------------------------------------------------------------- scale to zero


def test_the_group_may_be_empty_by_default(resources_template):
    parameter = resources_template["Parameters"]["WorkerMinSize"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    assert _res(resources_template, "WorkerGroup")["MinSize"] == {"Ref": "WorkerMinSize"}


def test_queued_or_running_jobs_with_no_host_wanted_set_the_group_to_one(resources_template):
    policy = _res(resources_template, "WorkerScaleOutFromZero")
    assert policy["PolicyType"] == "StepScaling" and policy["AdjustmentType"] == "ExactCapacity"
    assert policy["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    alarm = _res(resources_template, "QueueWithoutHostsAlarm")
    assert alarm["AlarmActions"] == [{"Ref": "WorkerScaleOutFromZero"}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        1,
    )
    queries = _queries(alarm)
    assert _metric(queries["visible"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", QUEUE_DIMENSION)
    assert _metric(queries["inflight"]) == ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", QUEUE_DIMENSION)
    assert _metric(queries["desired"]) == ("AWS/AutoScaling", "GroupDesiredCapacity", GROUP_DIMENSION)
    # only while the group wants no host: ExactCapacity 1 can then never shrink a bigger group
    assert queries["needsHost"]["Expression"] == "IF((visible + inflight) > 0 AND FILL(desired, 0) < 1, 1, 0)"
    assert [q["Id"] for q in alarm["Metrics"] if q["ReturnData"]] == ["needsHost"]
    collected = _res(resources_template, "WorkerGroup")["MetricsCollection"][0]["Metrics"]
    assert {"GroupDesiredCapacity", "GroupInServiceInstances"} <= set(collected)


def test_scale_in_to_zero_only_after_the_quiet_period_with_nothing_in_flight(resources_template):
    policy = _res(resources_template, "WorkerScaleInToZero")
    assert (policy["PolicyType"], policy["AdjustmentType"]) == ("StepScaling", "ExactCapacity")
    assert policy["StepAdjustments"] == [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]
    alarm = _res(resources_template, "QueueIdleAlarm")
    assert alarm["AlarmActions"] == [{"Ref": "WorkerScaleInToZero"}]
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "ScaleInQuietMinutes"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanOrEqualToThreshold", 0)
    queries = _queries(alarm)
    assert all(q["MetricStat"]["Period"] == 60 for q in queries.values() if "MetricStat" in q)
    # in flight = a running build (the heartbeat keeps its message hidden): counted, so never scaled in under one
    assert _metric(queries["inflight"]) == ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", QUEUE_DIMENSION)
    assert queries["depth"]["Expression"] == "visible + inflight" and queries["depth"]["ReturnData"] is True
    quiet = resources_template["Parameters"]["ScaleInQuietMinutes"]
    assert quiet["Default"] >= 5 and quiet["MaxValue"] * 60 <= 86400  # CloudWatch: periods x period <= 1 day
    # the only other policy never scales in, and a host being removed still drains through the hook
    assert _res(resources_template, "WorkerBacklogScaling")["TargetTrackingConfiguration"]["DisableScaleIn"] is True
    hooks = {
        h["LifecycleHookName"]: h for h in _res(resources_template, "WorkerGroup")["LifecycleHookSpecificationList"]
    }
    assert hooks["boatyard-drain"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"


def test_scaling_policies_are_exactly_these(resources_template):
    policies = {
        k for k, r in resources_template["Resources"].items() if r.get("Type") == "AWS::AutoScaling::ScalingPolicy"
    }
    assert policies == {"WorkerScaleOutFromZero", "WorkerBacklogScaling", "WorkerScaleInToZero"}


# ---------------------------------------------------------------- spot and warm pool


def test_spot_mixed_instances_with_an_on_demand_base_parameter(resources_template):
    group = _res(resources_template, "WorkerGroup")
    mixed = group["MixedInstancesPolicy"]["Fn::If"]
    assert mixed[0] == "UseWarmPool" and mixed[1] == {"Ref": "AWS::NoValue"}
    policy = mixed[2]
    types = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
    assert types == [{"Ref": "WorkerInstanceType"}, {"Ref": "WorkerInstanceType2"}, {"Ref": "WorkerInstanceType3"}]
    defaults = [resources_template["Parameters"][t["Ref"]]["Default"] for t in types]
    assert len(set(defaults)) == 3
    distribution = policy["InstancesDistribution"]
    assert distribution["SpotAllocationStrategy"] == "capacity-optimized"
    assert distribution["OnDemandBaseCapacity"] == {"Ref": "OnDemandBaseCapacity"}
    assert resources_template["Parameters"]["OnDemandBaseCapacity"]["Default"] == 0
    assert resources_template["Parameters"]["OnDemandPercentageAboveBase"]["Default"] == 0
    # the plain launch template only with a warm pool (EC2 allows no warm pool with mixed instances or spot)
    assert group["LaunchTemplate"]["Fn::If"][0] == "UseWarmPool" and group["LaunchTemplate"]["Fn::If"][2] == {
        "Ref": "AWS::NoValue"
    }


def test_warm_pool_is_optional_and_stopped(resources_template):
    assert resources_template["Parameters"]["WarmPoolSize"]["Default"] == 0
    assert resources_template["Conditions"]["UseWarmPool"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WarmPoolSize"}, "0"]}]
    }
    pool = resources_template["Resources"]["WorkerWarmPool"]
    assert pool["Condition"] == "UseWarmPool"
    assert pool["Properties"] == {
        "AutoScalingGroupName": {"Ref": "WorkerGroup"},
        "PoolState": "Stopped",
        "MinSize": {"Ref": "WarmPoolSize"},
    }


def test_a_host_takes_jobs_only_once_ready_and_never_while_in_the_warm_pool(ct, resources_template):
    script = ct.user_data_script(resources_template)
    hooks = {
        h["LifecycleHookName"]: h for h in _res(resources_template, "WorkerGroup")["LifecycleHookSpecificationList"]
    }
    ready = hooks["boatyard-ready"]
    assert (ready["LifecycleTransition"], ready["DefaultResult"]) == ("autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON")
    assert "--lifecycle-hook-name boatyard-ready" in script
    assert script.index("imds autoscaling/target-lifecycle-state") < script.index(
        "--lifecycle-hook-name boatyard-ready"
    )
    warmed = re.search(r"Warmed:\*\) (.*) ;;", script)
    assert warmed and "--now" not in warmed.group(1) and "enable boatyard-worker.service" in warmed.group(1)
    assert "for image in ${PrepullImages}; do" in script


def test_the_worker_knows_its_stack_and_watches_for_spot_interruptions(ct, resources_template):
    env = ct.worker_env_file(resources_template)
    assert env["BOATYARD_STACK_NAME"] == "${AWS::StackName}"
    assert env["BOATYARD_SPOT_WATCH"] == "true"
    settings = load_settings({"BOATYARD_SPOT_WATCH": env["BOATYARD_SPOT_WATCH"]})
    assert settings.spot_watch is True and settings.imds_url == "http://169.254.169.254"


def test_worker_logs_reach_their_log_group_through_the_agent(ct, resources_template):
    script = ct.user_data_script(resources_template)
    assert "StandardError=append:/var/log/boatyard/worker.log" in script
    agent = re.search(r"boatyard.json <<'JSON'\n(.*?)\nJSON\n", script, re.S)
    assert agent
    config = json.loads(agent.group(1).replace("${WorkerLogGroup}", "/boatyard/s/worker"))
    (collected,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected == {
        "file_path": "/var/log/boatyard/worker.log",
        "log_group_name": "/boatyard/s/worker",
        "log_stream_name": "{instance_id}",
    }
    assert "amazon-cloudwatch-agent-ctl -a fetch-config" in script
    policy = _res(resources_template, "WorkerPolicy")["PolicyDocument"]["Statement"]
    (ship,) = [s for s in policy if s["Sid"] == "ShipWorkerLogs"]
    assert ship["Resource"] == {"Fn::GetAtt": ["WorkerLogGroup", "Arn"]}


# ---------------------------------------------------------------- alarms


def _notifies(alarm: dict[str, Any]) -> None:
    expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert alarm["AlarmActions"] == expected and alarm["OKActions"] == expected


OPERATOR_ALARMS = [
    "DeadLetterQueueAlarm",
    "OldestJobAgeAlarm",
    "BuildFailureRateAlarm",
    "NoWorkerInServiceAlarm",
    "Api5xxAlarm",
]


def test_the_alarm_topic_is_optional(resources_template):
    assert resources_template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert resources_template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    for name in OPERATOR_ALARMS:
        _notifies(_res(resources_template, name))


def test_dead_letters_and_old_jobs_alarm(resources_template):
    dlq = _res(resources_template, "DeadLetterQueueAlarm")
    assert (dlq["Namespace"], dlq["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    age = _res(resources_template, "OldestJobAgeAlarm")
    assert (age["Namespace"], age["MetricName"], age["Dimensions"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        QUEUE_DIMENSION,
    )
    assert age["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}


def test_failure_rate_over_15_minutes_comes_from_the_worker_s_emf_metrics(resources_template):
    alarm = _res(resources_template, "BuildFailureRateAlarm")
    assert (
        alarm["Threshold"] == {"Ref": "FailureRateAlarmPercent"}
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    )
    queries = _queries(alarm)
    for query_id, name in (("ended", "JobsEnded"), ("failed", "JobsFailed")):
        assert _metric(queries[query_id]) == (metrics.NAMESPACE, name, STACK_DIMENSION)
        assert name in metrics.METRIC_UNITS
        assert queries[query_id]["MetricStat"]["Period"] == 900 and queries[query_id]["MetricStat"]["Stat"] == "Sum"
    assert queries["failureRate"]["Expression"] == "100 * FILL(failed, 0) / ended"
    assert alarm["TreatMissingData"] == "notBreaching"  # no builds is not a failure


def test_no_worker_in_service_while_jobs_wait(resources_template):
    alarm = _res(resources_template, "NoWorkerInServiceAlarm")
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "NoWorkerAlarmMinutes"}
    queries = _queries(alarm)
    assert _metric(queries["visible"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", QUEUE_DIMENSION)
    assert _metric(queries["hosts"]) == ("AWS/AutoScaling", "GroupInServiceInstances", GROUP_DIMENSION)
    assert queries["starved"]["Expression"] == "IF(visible > 0 AND FILL(hosts, 0) < 1, 1, 0)"
    # longer than a cold start, or it would fire on every scale-out from zero
    assert resources_template["Parameters"]["NoWorkerAlarmMinutes"]["Default"] >= 8


def test_api_5xx_rate_alarm_names_this_stack_s_api(resources_template):
    alarm = _res(resources_template, "Api5xxAlarm")
    assert alarm["Threshold"] == {"Ref": "Api5xxAlarmPercent"}
    queries = _queries(alarm)
    api = [{"Name": "ApiName", "Value": {"Fn::Sub": "${AWS::StackName}-api"}}]
    assert _metric(queries["errors"]) == ("AWS/ApiGateway", "5XXError", api)
    assert _metric(queries["requests"]) == ("AWS/ApiGateway", "Count", api)
    # the name the metrics carry is the one the merge gives chalice's REST API
    assert resources_template["Resources"]["RestAPI"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-api"}


@pytest.mark.parametrize(
    "parameter",
    ["OldestMessageAgeAlarmSeconds", "FailureRateAlarmPercent", "NoWorkerAlarmMinutes", "Api5xxAlarmPercent"],
)
def test_thresholds_are_parameters_with_defaults(resources_template, parameter):
    assert "Default" in resources_template["Parameters"][parameter]
    assert parameter in json.dumps(resources_template["Resources"])


# ---------------------------------------------------------------- dashboard


def _dashboard(resources_template) -> dict[str, Any]:
    text, names = _res(resources_template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    assert set(names) == {"QueueName", "DlqName"}
    for placeholder in re.findall(r"\$\{([^}]+)\}", text):
        text = text.replace("${" + placeholder + "}", f"<{placeholder}>")
    return json.loads(text)


def test_dashboard_shows_queue_hosts_throughput_percentiles_and_failures(resources_template):
    widgets = _dashboard(resources_template)["widgets"]
    by_title = {w["properties"]["title"]: w["properties"] for w in widgets}
    used = {(m[0], m[1]) for props in by_title.values() for m in props["metrics"] if isinstance(m[0], str)}
    assert {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
            ("AWS/AutoScaling", "GroupInServiceInstances")} <= used  # fmt: skip
    emf = {name for namespace, name in used if namespace == metrics.NAMESPACE}
    assert emf <= set(metrics.METRIC_UNITS) and {"JobsEnded", "BuildSeconds", "QueueWaitSeconds"} <= emf
    stats = {m[-1].get("stat") for props in by_title.values() for m in props["metrics"] if isinstance(m[-1], dict)}
    assert {"p50", "p95"} <= stats
    (search,) = [m[0]["expression"] for props in by_title.values() for m in props["metrics"] if isinstance(m[0], dict)]
    assert "{Boatyard,Stack,Outcome,Phase,ReasonClass}" in search and 'MetricName="JobOutcomes"' in search
    assert tuple(metrics.OUTCOME_DIMENSIONS) == ("Stack", "Outcome", "Phase", "ReasonClass")


# ---------------------------------------------------------------- HTTPS UI


def test_ui_is_served_over_https_by_cloudfront_with_the_csp_as_a_header(resources_template):
    config = _res(resources_template, "UiDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["UiBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["UiOriginAccessControl", "Id"]}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": "UiResponseHeadersPolicy"}
    oac = _res(resources_template, "UiOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    headers = _res(resources_template, "UiResponseHeadersPolicy")["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "*" not in directives["connect-src"].replace("https://*.", "")  # no bare wildcard
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    outputs = resources_template["Outputs"]
    assert outputs["UiURL"]["Value"] == {"Fn::Sub": "https://${UiDistribution.DomainName}"}
    assert "UiWebsiteURL" not in outputs


def test_the_api_and_the_upload_bucket_answer_cors_for_the_https_ui_only(resources_template):
    origin = {"Fn::Sub": "https://${UiDistribution.DomainName}"}
    assert _res(resources_template, "APIHandler")["Environment"]["Variables"]["BOATYARD_CORS_ORIGIN"] == origin
    (rule,) = _res(resources_template, "ContextsBucket")["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == [origin]
    assert load_settings({}).cors_origin == "*"  # the local stack serves the UI itself
    assert (
        load_settings({"BOATYARD_CORS_ORIGIN": "https://d1.cloudfront.net"}).cors_origin == "https://d1.cloudfront.net"
    )
