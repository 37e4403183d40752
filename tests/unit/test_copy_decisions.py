"""What a failed copy means, row by row: error kind x receive count x max receives -> what to do."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from grokvideo.copier import (
    RETRY_DELAYS,
    Action,
    Decision,
    FailureKind,
    MissingJob,
    decide,
    failure_kind,
    retry_delay,
)
from grokvideo.errors import ArchiveError, EventPublishError, PermanentArchiveError, UrlRefusedError

PERMANENT, TRANSIENT = FailureKind.PERMANENT, FailureKind.TRANSIENT
SETTLE_PERMANENT = Decision(Action.SETTLE_PERMANENT)
RETRIES_SPENT = Decision(Action.SETTLE_RETRIES_SPENT)


def retry(seconds: int) -> Decision:
    return Decision(Action.RETRY, retry_after=seconds)


@pytest.mark.parametrize(
    ("kind", "receive_count", "max_receives", "expected"),
    [
        # A permanent failure settles at once, whichever receive it is: asking again gets the same.
        (PERMANENT, 1, 3, SETTLE_PERMANENT),
        (PERMANENT, 2, 3, SETTLE_PERMANENT),
        (PERMANENT, 3, 3, SETTLE_PERMANENT),
        (PERMANENT, 4, 3, SETTLE_PERMANENT),
        # A transient one comes back soon, then later, until the last allowed receive.
        (TRANSIENT, 1, 3, retry(10)),
        (TRANSIENT, 2, 3, retry(60)),
        (TRANSIENT, 3, 3, RETRIES_SPENT),
        (TRANSIENT, 4, 3, RETRIES_SPENT),  # past the last (an approximate count): still settles
        (TRANSIENT, 1, 1, RETRIES_SPENT),  # a single receive allowed: the first is the last
        (TRANSIENT, 3, 5, retry(300)),
        (TRANSIENT, 4, 5, retry(300)),
        (TRANSIENT, 5, 5, RETRIES_SPENT),
        (TRANSIENT, 0, 3, retry(10)),  # no count given: the first receive
    ],
)
def test_decide(kind: FailureKind, receive_count: int, max_receives: int, expected: Decision) -> None:
    assert decide(kind, receive_count, max_receives) == expected


def test_decide_with_another_schedule() -> None:
    assert decide(TRANSIENT, 2, 3, delays=(1, 2)) == retry(2)
    assert decide(TRANSIENT, 7, 9, delays=(1, 2)) == retry(2)


@pytest.mark.parametrize(("receive_count", "seconds"), [(0, 10), (1, 10), (2, 60), (3, 300), (50, 300)])
def test_retry_delay_backs_off_from_seconds_to_minutes(receive_count: int, seconds: int) -> None:
    assert retry_delay(receive_count) == seconds


def test_the_schedule_stays_far_below_the_copy_queue_visibility_timeout() -> None:
    assert RETRY_DELAYS == (10, 60, 300)
    assert max(RETRY_DELAYS) < 1800


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "UpdateItem")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (PermanentArchiveError("gone", reason="URL_EXPIRED"), PERMANENT),
        (PermanentArchiveError("4xx", reason="TRANSFER_FAILED"), PERMANENT),
        (UrlRefusedError("loopback"), PERMANENT),
        (ArchiveError("503", reason="TRANSFER_FAILED"), TRANSIENT),
        (MissingJob("no job x"), TRANSIENT),
        (EventPublishError("not accepted"), TRANSIENT),
        (_client_error("ProvisionedThroughputExceededException"), TRANSIENT),
        (EndpointConnectionError(endpoint_url="https://events"), TRANSIENT),
        (ValueError("invalid literal for int()"), TRANSIENT),
        (KeyError("state"), TRANSIENT),
    ],
)
def test_failure_kind(error: BaseException, kind: FailureKind) -> None:
    """Only an error that says so is permanent; anything else (AWS, a bug) may pass."""
    assert failure_kind(error) is kind
