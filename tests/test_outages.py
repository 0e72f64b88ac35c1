"""An outage is logged in one line, wherever it is met: here Celery beat's own log, which the
scheduler filters (a traceback on every Ctrl-C of the stack, when Redis stops first)."""

from __future__ import annotations

import logging
import traceback

import kombu.exceptions
import pytest
import redis

from sms_worker.outages import OutageInOneLine


def beat_cannot_publish() -> BaseException:
    """What Celery beat catches when Redis is away: kombu's error, raised from redis-py's."""
    try:
        try:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        except redis.ConnectionError as error:
            raise kombu.exceptions.OperationalError(str(error)) from error
    except kombu.exceptions.OperationalError as error:
        return error


@pytest.fixture
def beat_log(caplog):
    logger = logging.getLogger("celery.beat.test")
    logger.addFilter(OutageInOneLine())
    caplog.set_level(logging.ERROR, logger=logger.name)
    return logger


def test_beat_failing_to_publish_while_redis_is_away_is_one_line_without_a_traceback(beat_log, caplog):
    error = beat_cannot_publish()
    try:
        raise error
    except kombu.exceptions.OperationalError as exc:
        beat_log.error("Message Error: %s\n%s", f"Couldn't apply scheduled task poll-statuses: {exc}", traceback.format_stack(), exc_info=True)

    [record] = caplog.records
    assert record.exc_info is None
    assert caplog.text.count("\n") == 1, caplog.text
    assert "Couldn't apply scheduled task poll-statuses" in caplog.text and "Redis is unreachable (ConnectionError)" in caplog.text


def test_a_bug_keeps_its_traceback(beat_log, caplog):
    try:
        raise KeyError("not an outage")
    except KeyError:
        beat_log.error("Message Error: something broke", exc_info=True)

    assert "Traceback" in caplog.text and "KeyError: 'not an outage'" in caplog.text
