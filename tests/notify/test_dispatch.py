"""The dispatcher's promise: every row ends sent exactly once or dead — none lost, none doubled.

Failures are injected at a real webhook receiver (429, 5xx, a response lost
after the receiver accepted the message) and crashes in the dispatcher
itself, between claiming a row and recording its result: the run stops there
(a ``BaseException`` the dispatcher does not catch, as a kill would), and a
new dispatcher runs after the lease has passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.notify.conftest import T0, WEBHOOK_SECRET, Failure, WebhookServer, outbox_rows, queue

from churnwatch.errors import DeliveryError
from churnwatch.notify import (
    Channel,
    FileChannel,
    Notification,
    RetryPolicy,
    WebhookChannel,
    claim_due,
    dispatch,
    due_notifications,
    record_sent,
)
from churnwatch.store import OUTBOX, Store, open_store

POLICY = RetryPolicy(max_attempts=4, backoff_s=1, max_backoff_s=8, lease_s=30, batch_rows=3)
# Past every lease, backoff and Retry-After of the tests: each round finds every row due.
ROUND = dt.timedelta(seconds=60)


class Crash(BaseException):
    """The dispatcher stops dead here (as if killed): nothing after it runs."""


@dataclasses.dataclass
class CrashingChannel:
    """A channel that stops the dispatcher before or after delivering, as scripted."""

    inner: Channel
    plan: list[str]  # per delivery call: 'ok', 'before' or 'after'
    calls: int = 0
    crashed_after: Counter[str] = dataclasses.field(default_factory=Counter)

    def deliver(self, note: Notification) -> str | None:
        step = self.plan[self.calls] if self.calls < len(self.plan) else "ok"
        self.calls += 1
        if step == "before":
            raise Crash
        ref = self.inner.deliver(note)
        if step == "after":
            self.crashed_after[note.idempotency_key] += 1
            raise Crash
        return ref


FAILURES = st.sampled_from(
    [
        None,
        Failure(500),
        Failure(503),
        Failure(429, retry_after="5"),
        Failure(429),
        Failure(502, accepted=True),  # accepted, but the answer was lost
    ]
)


@pytest.fixture(scope="module")
def receiver(webhook_server: WebhookServer) -> WebhookServer:
    return webhook_server


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.integers(min_value=1, max_value=8),
    answers=st.lists(FAILURES, max_size=30),
    crashes=st.lists(st.sampled_from(["ok", "ok", "ok", "before", "after"]), max_size=30),
)
def test_every_row_ends_sent_once_or_dead(
    receiver: WebhookServer, rows: int, answers: list[Failure | None], crashes: list[str]
) -> None:
    receiver.reset()
    for answer in answers:
        receiver.fail_next("webhook", answer or Failure(200))  # 200: a scripted success
    folder = Path(tempfile.mkdtemp())
    store = open_store(f"sqlite:///{folder / 'ops.sqlite'}")
    try:
        keys = queue(store, rows, channel="webhook")
        webhook = WebhookChannel(receiver.url, WEBHOOK_SECRET, timeout_s=5)
        channel = CrashingChannel(webhook, crashes)
        now = T0
        for _ in range(rows * POLICY.max_attempts + len(crashes) + 2):
            with contextlib.suppress(Crash):  # a new dispatcher takes over next round
                dispatch(store, {"webhook": channel}, now=now, policy=POLICY)
            now += ROUND
            if not due_notifications(store, now=now + ROUND):
                break
        webhook.close()
        final = outbox_rows(store)
    finally:
        store.close()

    assert set(final) == set(keys)
    statuses = {key: row["status"] for key, row in final.items()}
    assert set(statuses.values()) <= {"sent", "dead"}, statuses
    accepted = Counter(receiver.accepted)
    assert set(accepted) <= set(keys)  # nothing the outbox did not hold
    for key, row in final.items():
        assert 1 <= row["attempts"] <= POLICY.max_attempts
        if row["status"] == "sent":
            # Delivered: the receiver has it, once after de-duplication by key.
            assert accepted[key] >= 1
            assert receiver.messages[key]["idempotency_key"] == key
            assert row["provider_ref"] is not None
        else:
            assert row["attempts"] == POLICY.max_attempts
    # Every acceptance at the receiver is accounted for: the one recorded as sent, plus one
    # per crash after delivery and per answer lost on the way back — the documented
    # at-least-once window, which the Idempotency-Key lets the receiver fold into one.
    for key in keys:
        expected = (statuses[key] == "sent") + channel.crashed_after[key]
        assert accepted[key] == expected + receiver.lost_answers[key], key


def test_a_crash_between_claim_and_record_is_retried_after_the_lease(store: Store) -> None:
    (key,) = queue(store, 1, channel="file")
    (claimed,) = claim_due(store, now=T0, policy=POLICY)  # ... and the process dies here
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("sending", 1)
    assert row["next_attempt_at"] == T0 + dt.timedelta(seconds=POLICY.lease_s)
    out = Path(tempfile.mkdtemp()) / "out.jsonl"
    channels = {"file": FileChannel(out)}
    # Within the lease the row is someone else's: not claimed again.
    assert dispatch(store, channels, now=T0 + dt.timedelta(seconds=29), policy=POLICY).claimed == 0
    after = T0 + dt.timedelta(seconds=30)
    assert dispatch(store, channels, now=after, policy=POLICY).sent == 1
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 2, after)
    assert len(out.read_text().splitlines()) == 1
    # The crashed dispatcher, were it to wake up, cannot overwrite the newer attempt.
    assert not record_sent(store, claimed, now=after, provider_ref="stale")
    assert outbox_rows(store)[key]["provider_ref"] == "out.jsonl@0"


def test_a_row_that_keeps_crashing_the_dispatcher_ends_dead(store: Store) -> None:
    (key,) = queue(store, 1, channel="file")
    now = T0
    for _ in range(POLICY.max_attempts):
        assert len(claim_due(store, now=now, policy=POLICY)) == 1
        now += ROUND
    assert claim_due(store, now=now, policy=POLICY) == []
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"]) == ("dead", POLICY.max_attempts)
    assert "did not finish" in row["last_error"]


def test_rows_of_an_unconfigured_channel_wait(store: Store) -> None:
    (slack_key,) = queue(store, 1, channel="slack")
    out = Path(tempfile.mkdtemp()) / "out.jsonl"
    assert dispatch(store, {"file": FileChannel(out)}, now=T0).claimed == 0
    assert outbox_rows(store)[slack_key]["status"] == "pending"


def test_a_fault_in_a_channel_is_a_retried_failure(store: Store) -> None:
    class Broken:
        def deliver(self, note: Notification) -> str | None:
            raise KeyError("revenue")

    (key,) = queue(store, 1, channel="file")
    report = dispatch(store, {"file": Broken()}, now=T0, policy=POLICY)
    assert (report.retrying, report.dead) == (1, 0)
    row = outbox_rows(store)[key]
    assert row["status"] == "failed"
    assert row["last_error"] == "KeyError: 'revenue'"


def test_a_permanent_error_is_dead_after_one_attempt(store: Store) -> None:
    class Refusing:
        def deliver(self, note: Notification) -> str | None:
            raise DeliveryError("no such user", permanent=True, retry_after_s=10)

    (key,) = queue(store, 1, channel="file")
    assert dispatch(store, {"file": Refusing()}, now=T0, policy=POLICY).dead == 1
    row = outbox_rows(store)[key]
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 1, "no such user")


def test_limit_and_batches(store: Store) -> None:
    queue(store, 7, channel="file")
    out = Path(tempfile.mkdtemp()) / "out.jsonl"
    report = dispatch(store, {"file": FileChannel(out)}, now=T0, policy=POLICY, limit=5)
    assert (report.claimed, report.sent) == (5, 5)
    assert dispatch(store, {"file": FileChannel(out)}, now=T0, policy=POLICY).sent == 2
    assert len(out.read_text().splitlines()) == 7


def test_dry_run_changes_nothing(store: Store) -> None:
    keys = queue(store, 3, channel="file")
    before = outbox_rows(store)
    due = due_notifications(store, now=T0)
    assert [n.idempotency_key for n in due] == keys
    assert due_notifications(store, now=T0 - dt.timedelta(seconds=1)) == []
    assert outbox_rows(store) == before


def test_backoff_doubles_up_to_the_cap_and_retry_after_wins() -> None:
    policy = RetryPolicy(backoff_s=60, max_backoff_s=3600)
    assert [policy.delay_s(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert policy.delay_s(1, retry_after_s=7200) == 7200
    assert policy.delay_s(5000) == 3600  # no overflow
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


# -- two dispatchers at once, on every store engine ---------------------------------------------
@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    opened = open_store(url)
    yield opened
    opened.close()


class Recorder:
    """Counts deliveries per key, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delivered: Counter[str] = Counter()

    def deliver(self, note: Notification) -> str | None:
        with self.lock:
            self.delivered[note.idempotency_key] += 1
        return f"ref-{note.outbox_id}"


def test_concurrent_dispatchers_never_send_a_row_twice(any_store: Store) -> None:
    keys = queue(any_store, 60, channel="file")
    recorder = Recorder()
    policy = RetryPolicy(batch_rows=4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dispatch(any_store, {"file": recorder}, now=T0, policy=policy)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert recorder.delivered == Counter(dict.fromkeys(keys, 1))
    with any_store.engine.connect() as connection:
        statuses = connection.execute(
            sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
        ).all()
    assert dict(statuses) == {"sent": 60}


# -- a real kill ---------------------------------------------------------------------------------
_DISPATCHER = """
import sys
from churnwatch.notify import RetryPolicy, WebhookChannel, dispatch
from churnwatch.store import open_store

store = open_store(sys.argv[1])
channel = WebhookChannel(sys.argv[2], sys.argv[3], timeout_s=10)
report = dispatch(store, {"webhook": channel}, policy=RetryPolicy(lease_s=1.0, batch_rows=3))
print(report.sent)
"""


@pytest.mark.slow
def test_dispatchers_killed_at_random_lose_nothing(tmp_path: Path, webhook: WebhookServer) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    with open_store(url) as store:
        keys = queue(store, 40, channel="webhook", at=dt.datetime.now(dt.UTC))
    webhook.delay_s = 0.02  # a dispatcher is caught in the middle of a delivery now and then
    script = tmp_path / "dispatcher.py"
    script.write_text(_DISPATCHER)
    command = [sys.executable, str(script), url, webhook.url, WEBHOOK_SECRET]
    timing = random.Random(7)
    kills = 0
    for _ in range(6):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        # Kill once the dispatcher is delivering: after a few more requests reach the
        # receiver, and a moment more — which lands before, during or after a record.
        target = len(webhook.requests) + timing.randint(1, 5)
        deadline = time.monotonic() + 120
        while len(webhook.requests) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the dispatcher made no progress"
            time.sleep(0.002)
        time.sleep(timing.uniform(0.0, 0.03))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        time.sleep(1.1)  # past the lease: the next dispatcher takes over what was in flight
    before_last = len(webhook.accepted)
    subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    assert kills >= 4
    assert 0 < before_last < len(keys)  # the killed runs did part of the work
    with open_store(url) as store:
        final = outbox_rows(store)
    assert {row["status"] for row in final.values()} == {"sent"}
    accepted = Counter(webhook.accepted)
    assert set(accepted) == set(keys)  # none lost
    assert sorted(webhook.messages) == sorted(keys)  # once each after de-duplication by key
    # A kill can repeat at most the one message in flight when it landed.
    assert sum(accepted.values()) - len(keys) <= kills
