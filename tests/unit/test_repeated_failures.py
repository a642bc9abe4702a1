"""A failure repeated for every client is logged in full a few times, then counted once per
interval; one that goes quiet for an interval is shown in full again."""

from __future__ import annotations

import asyncio
import logging

from robyn._tracebacks import RepeatedFailures


def fail(n: int) -> ValueError:
    try:
        raise ValueError(f"failure number {n}")  # the message differs; the place does not
    except ValueError as error:
        return error


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logger() -> tuple[logging.Logger, Lines]:
    log = logging.getLogger("test.repeated")
    lines = Lines()
    log.handlers[:] = [lines]
    log.propagate = False
    return log, lines


async def test_the_first_few_are_shown_then_counted_per_interval():
    log, lines = logger()
    failures = RepeatedFailures(log)
    failures.INTERVAL = 0.05
    for n in range(10):
        failures.failed("handler on /fail", f"conn-{n}", fail(n))
    shown = [record for record in lines.records if record.exc_info]
    assert len(shown) == RepeatedFailures.SHOWN
    assert "counted, not shown" in shown[-1].getMessage()
    while not any("more time(s) in the last" in record.getMessage() for record in lines.records):
        await asyncio.sleep(0.01)
    counted = lines.records[-1].getMessage()
    assert "failed 7 more time(s)" in counted and "ValueError at" in counted, counted
    # Quiet for an interval: forgotten, and shown in full again.
    while failures._seen:
        await asyncio.sleep(0.01)
    failures.failed("handler on /fail", "conn-10", fail(10))
    assert lines.records[-1].exc_info is not None


async def test_what_is_not_reported_yet_is_reported_at_shutdown():
    log, lines = logger()
    failures = RepeatedFailures(log)
    for n in range(5):
        failures.failed("on_close on /x", f"conn-{n}", fail(n))
    failures.report_all()
    assert "failed 2 more time(s) not reported yet" in lines.records[-1].getMessage()
    assert not failures._seen
