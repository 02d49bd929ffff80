"""The template's outage settings agree with the code's policy: retention, the age limit, the
redrive backstop's arithmetic, the forwarder's environment, and alarms on the metrics it emits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from segment_bridge.config import Settings
from segment_bridge.forward import BREAKER_OPEN_METRIC, OLDEST_AGE_METRIC
from segment_bridge.forward.policy import BACKSTOP_SLACK, RedeliverySchedule
from segment_bridge.limits import SQS_MAX_RECEIVE_COUNT, SQS_MAX_RETENTION_SECONDS
from segment_bridge.observability import NAMESPACE, SERVICE

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def queue(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["EventQueue"]["Properties"]


def forwarder_env(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["ForwardFunction"]["Properties"]["Environment"]["Variables"]


def test_the_queue_keeps_messages_14_days_and_the_age_limit_stays_below_it(template: dict[str, Any]) -> None:
    assert queue(template)["MessageRetentionPeriod"] == SQS_MAX_RETENTION_SECONDS
    parameter = template["Parameters"]["MaxDeliveryAgeHours"]
    assert parameter["Default"] == Settings().max_delivery_age_hours == 168
    assert Settings.model_fields["max_delivery_age_hours"].metadata[-1].le == parameter["MaxValue"]
    for hours in (parameter["Default"], parameter["MaxValue"]):
        schedule = RedeliverySchedule.for_settings(Settings(MAX_DELIVERY_AGE_HOURS=hours))
        # The receive that gives a record up comes at most a (stretched) cap and a slot past the limit.
        assert hours * 3600 + schedule.cap + schedule.base + 3600 / 4 < SQS_MAX_RETENTION_SECONDS
    assert forwarder_env(template)["MAX_DELIVERY_AGE_HOURS"] == {"Ref": "MaxDeliveryAgeHours"}


def test_the_redrive_backstop_can_never_fire_before_the_age_limit(template: dict[str, Any]) -> None:
    """docs/delivery.md, "The backstop": at 168 h the schedule needs 845 receives; at 335 h, with the
    cap stretched to ~28 min, 900; the backstop is 1,000 with 100 kept for crashes and timeouts."""
    backstop = queue(template)["RedrivePolicy"]["maxReceiveCount"]
    assert backstop == forwarder_env(template)["MAX_RECEIVE_COUNT"] == SQS_MAX_RECEIVE_COUNT
    parameter = template["Parameters"]["MaxDeliveryAgeHours"]
    for hours in range(parameter["MinValue"], parameter["MaxValue"] + 1):
        settings = Settings(MAX_DELIVERY_AGE_HOURS=hours, MAX_RECEIVE_COUNT=backstop)
        needed = RedeliverySchedule.for_settings(settings).receives_to_expire(hours * 3600)
        assert needed + BACKSTOP_SLACK <= backstop, hours
    default = RedeliverySchedule.for_settings(Settings())
    assert (default.base, default.cap, default.receives_to_expire(168 * 3600)) == (30, 900, 845)


def test_the_forwarder_can_back_records_off_on_its_own_queue(template: dict[str, Any]) -> None:
    assert forwarder_env(template)["QUEUE_URL"] == {"Ref": "EventQueue"}


def _emitted(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The EMF documents the forward handler's metrics step writes for a report with one open region."""
    import forward_handler

    from segment_bridge.forward import BreakerState, ForwardReport

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    report = ForwardReport(records=1, oldest_age_seconds=7200.0, breakers=[BreakerState("eu", True, 1.0, 10)])
    forward_handler.record_metrics(report)
    forward_handler.metrics.flush_metrics()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def _dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_unreachable_alarms_watch_the_breaker_metric_the_forwarder_emits(
    template: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = _emitted(capsys, monkeypatch)
    [regional] = [d for d in documents if BREAKER_OPEN_METRIC in d]
    directive = regional["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE and regional[BREAKER_OPEN_METRIC] == [1.0]
    emitted_dimensions = {name: regional[name] for name in directive["Dimensions"][0]}
    assert emitted_dimensions == {"region": "eu", "service": SERVICE}
    for region in ("us", "eu"):
        alarm = template["Resources"][f"SegmentUnreachable{region.title()}Alarm"]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, BREAKER_OPEN_METRIC)
        assert _dimensions(alarm) == {**emitted_dimensions, "region": region}
        assert alarm["Period"] * alarm["DatapointsToAlarm"] == 15 * 60 and alarm["EvaluationPeriods"] == 3
        assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_the_age_alarm_fires_at_half_the_age_limit_on_the_forwarders_age_metric(
    template: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = _emitted(capsys, monkeypatch)
    [main] = [d for d in documents if OLDEST_AGE_METRIC in d]
    assert main[OLDEST_AGE_METRIC] == [7200.0] and main["service"] == SERVICE
    alarm = template["Resources"]["OldestMessagePastHalfTheAgeLimitAlarm"]["Properties"]
    [metric, expression] = alarm["Metrics"]
    stat = metric["MetricStat"]
    assert stat["Metric"]["MetricName"] == OLDEST_AGE_METRIC and stat["Metric"]["Namespace"] == NAMESPACE
    assert _dimensions(stat["Metric"]) == {"service": SERVICE} and stat["Stat"] == "Maximum"
    assert expression["Expression"] == f"{metric['Id']} / 1800" and expression["ReturnData"] is True
    assert alarm["Threshold"] == {"Ref": "MaxDeliveryAgeHours"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # age_seconds / 1800 > H  <=>  age_seconds > H / 2 hours
    hours = 168
    assert (hours / 2 * 3600 + 1) / 1800 > hours and not (hours / 2 * 3600 - 1) / 1800 > hours
