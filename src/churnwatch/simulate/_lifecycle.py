"""The life of each account: subscription periods, charges, support calls, churn.

Time advances a week at a time over all live accounts of a block at once
(a loop per week, vectorised over accounts). Each week:

1. accounts whose signup or comeback falls in the week start a subscription
   period, billed monthly or yearly from its start date;
2. the churn hazard of :mod:`._drivers` is evaluated from the state at the
   week's start (tenure, failed charges and negative calls in the previous 90
   days) and a voluntary cancellation may be drawn inside the week;
3. support calls arrive; their sentiment depends on latent satisfaction and
   recent payment trouble, and negative ones raise the hazard for 90 days;
4. charges that fall due are attempted; a failed charge is retried 3, 8 and
   15 days later, and when every retry fails the period ends the day after
   the last one (involuntary churn, status ``ended``);
5. churned accounts may come back after a gap, as a new period (a win-back
   discount after a cancellation).

Weekly steps keep the loop to ~52 iterations per simulated year; events
inside a week still get exact, continuous times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnwatch.simulate import _catalog as cat
from churnwatch.simulate._accounts import AccountBlock
from churnwatch.simulate._drivers import HAZARD
from churnwatch.simulate._sampling import Floats, Ints, rank_within_groups
from churnwatch.simulate._time import add_months

__all__ = [
    "ACTIVE",
    "CANCELED",
    "ENDED",
    "FAILED",
    "REFUNDED",
    "SUCCEEDED",
    "Charges",
    "Lifecycle",
    "Periods",
    "SupportCalls",
    "simulate_lifecycle",
]

#: How a period ended (codes of ``Periods.kind``, in the order of the ``status`` strings).
ACTIVE, CANCELED, ENDED = 0, 1, 2
#: Outcome of a charge attempt.
SUCCEEDED, FAILED, REFUNDED = 0, 1, 2

#: A charge's refund chance, and the higher one when the customer cancels soon after paying.
_REFUND_SHARE = 0.01
_REFUND_ON_CANCEL_SHARE = 0.35
_REFUND_ON_CANCEL_DAYS = 14.0
#: Failures and negative calls remembered per account; more within 90 days saturate the count.
_RING = 8
_INF = np.inf


@dataclass(frozen=True)
class Periods:
    """Subscription periods, sorted by account then start."""

    account: Ints
    ordinal: Ints  # 0 for the account's first period
    start: Floats
    end: Floats  # inf while active at the observation end
    kind: Ints  # ACTIVE, CANCELED or ENDED
    discount: Floats
    cancel_reason: Ints  # index of CANCEL_REASONS (meaningful when CANCELED)


@dataclass(frozen=True)
class Charges:
    """Charge attempts, sorted by account then time."""

    account: Ints
    period: Ints  # row in Periods
    time: Floats
    amount: Floats
    status: Ints  # SUCCEEDED, FAILED or REFUNDED
    reason: Ints  # index of FAILURE_REASONS, -1 when not failed
    attempt: Ints  # 0 for the scheduled charge, 1-3 for retries


@dataclass(frozen=True)
class SupportCalls:
    """Support calls, in the order they were drawn."""

    account: Ints
    time: Floats
    sentiment: Ints  # index of SENTIMENTS
    score: Floats  # in [-1, 1]
    duration_s: Floats


@dataclass(frozen=True)
class Lifecycle:
    """Everything the weekly simulation of a block produced."""

    periods: Periods
    charges: Charges
    calls: SupportCalls


class _Ring:
    """The last few event times of each account, to count those in a trailing window."""

    def __init__(self, n: int) -> None:
        self.times = np.full((n, _RING), -_INF)
        self.count = np.zeros(n, dtype=np.int64)

    def push(self, accounts: Ints, times: Floats) -> None:
        """Remember ``times`` for ``accounts`` (sorted; an account may repeat)."""
        if accounts.size == 0:
            return
        slot = (self.count[accounts] + rank_within_groups(accounts)) % _RING
        self.times[accounts, slot] = times
        np.add.at(self.count, accounts, 1)

    def within(self, accounts: Ints, now: float, window: float) -> Ints:
        """How many remembered times of ``accounts`` lie in ``(now - window, now]``."""
        times = self.times[accounts]
        counts: Ints = ((times <= now) & (times > now - window)).sum(axis=1).astype(np.int64)
        return counts


class _Columns:
    """Per-week arrays of one record type, concatenated at the end."""

    def __init__(self, *names: str) -> None:
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in names}

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.parts[name].append(np.asarray(values))

    def get(self, name: str, dtype: type[np.generic]) -> np.ndarray:
        parts = self.parts[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _first_due(anchor: Floats, months: Ints, now: float, start_day: int) -> Ints:
    """Smallest billing ordinal ``k`` with ``anchor + k * months`` at or after ``now``."""
    k = np.maximum(0, np.floor((now - anchor) / (30.4375 * months)).astype(np.int64) - 1)
    while True:
        late = add_months(anchor, k * months, start_day) < now
        if not late.any():
            return k
        k[late] += 1


def simulate_lifecycle(
    accounts: AccountBlock,
    rng: np.random.Generator,
    horizon_days: float,
    start_day: int,
) -> Lifecycle:
    """Run the weekly churn process for one block of accounts.

    Parameters
    ----------
    accounts : AccountBlock
        The accounts and their static traits.
    rng : numpy.random.Generator
        The block's lifecycle stream.
    horizon_days : float
        Length of the observation period; nothing happens at or after it.
    start_day : int
        The period's first day, in days since the epoch (for calendar months).
    """
    hz = HAZARD
    n = accounts.size
    months = np.where(accounts.annual, 12, 1).astype(np.int64)
    static_hazard = hz.base_per_day * np.exp(accounts.log_hazard)
    list_mrr = accounts.list_mrr
    retry_success = np.asarray(cat.RETRY_SUCCESS)
    retry_days = np.asarray(cat.RETRY_DAYS)
    reason_cdf = np.cumsum(cat.FAILURE_REASON_SHARES) / np.sum(cat.FAILURE_REASON_SHARES)
    neg0, neg_sat, neg_fail = hz.negative_call_logit

    alive = np.zeros(n, dtype=np.bool_)
    period_start = np.zeros(n)
    next_start = accounts.created.copy()
    ordinal = np.full(n, -1, dtype=np.int64)
    discount = accounts.discount.copy()
    bill_k = np.zeros(n, dtype=np.int64)
    next_bill = np.full(n, _INF)
    lapse_at = np.full(n, _INF)
    failures, negatives = _Ring(n), _Ring(n)
    starts = _Columns("account", "ordinal", "start", "discount")
    ends = _Columns("account", "ordinal", "end", "kind")
    charges = _Columns("account", "ordinal", "time", "amount", "status", "reason", "attempt")
    calls = _Columns("account", "time", "sentiment", "score", "duration_s")

    for t0 in np.arange(0.0, horizon_days, 7.0):
        t0 = float(t0)
        t1 = min(t0 + 7.0, horizon_days)

        # 1. Signups and comebacks open a period.
        opening = np.flatnonzero(~alive & (next_start < t1))
        if opening.size:
            began = next_start[opening]
            alive[opening] = True
            period_start[opening] = began
            next_start[opening] = _INF
            ordinal[opening] += 1
            k = _first_due(began, months[opening], t0, start_day)
            bill_k[opening] = k
            next_bill[opening] = add_months(began, k * months[opening], start_day)
            starts.add(
                account=opening, ordinal=ordinal[opening], start=began, discount=discount[opening]
            )

        live = np.flatnonzero(alive)
        if live.size == 0:
            continue
        since = np.maximum(t0, period_start[live])
        exposure = t1 - since

        # 2. Voluntary cancellation, from the state at the start of the week.
        tenure = since - accounts.created[live]
        n_failed = failures.within(live, t0, hz.failed_payment_window_days)
        n_negative = negatives.within(live, t0, hz.negative_call_window_days)
        hazard = (
            static_hazard[live]
            * (1.0 + hz.early_tenure_boost * np.exp(-tenure / hz.early_tenure_days))
            * (1.0 + hz.failed_payment_boost * n_failed)
            * (1.0 + hz.negative_call_boost * n_negative)
        )
        u = rng.random((live.size, 2))
        quits = u[:, 0] < -np.expm1(-hazard * exposure)
        churn_at = np.where(quits, since + u[:, 1] * exposure, _INF)
        lapses = lapse_at[live] < np.minimum(churn_at, t1)
        churn_at = np.where(lapses, lapse_at[live], churn_at)
        until = np.minimum(churn_at, t1)

        # 3. Support calls while live this week.
        n_calls = rng.poisson(accounts.call_rate[live] * (until - since))
        if n_calls.any():
            who = np.repeat(live, n_calls)
            u = rng.random((who.size, 4))
            at = np.repeat(since, n_calls) + u[:, 0] * np.repeat(until - since, n_calls)
            logit = (
                neg0
                + neg_sat * accounts.satisfaction[who]
                + neg_fail * np.repeat(n_failed > 0, n_calls)
            )
            negative = u[:, 1] < 1.0 / (1.0 + np.exp(-logit))
            sentiment = np.where(negative, 0, np.where(u[:, 2] < 0.45, 2, 1))
            low = np.array([-1.0, -0.3, 0.3])[sentiment]
            calls.add(
                account=who,
                time=at,
                sentiment=sentiment,
                score=np.round(low + 0.7 * u[:, 3], 3),
                duration_s=np.round(rng.lognormal(np.log(420.0), 0.6, who.size), 1),
            )
            negatives.push(who[negative], at[negative])

        # 4. Charges that fall due, and their dunning retries.
        due = next_bill[live] < until
        if due.any():
            payer = live[due]
            at = next_bill[payer]
            amount = np.round(list_mrr[payer] * (1.0 - discount[payer]), 2) * months[payer]
            u = rng.random((payer.size, 5))
            failed = u[:, 0] < accounts.fail_prob[payer]
            reason = np.searchsorted(reason_cdf, u[:, 1], side="right")
            retry_ok = u[:, 2:] < retry_success[reason][:, None]
            recovered = retry_ok.sum(axis=1) > 0
            first_ok = np.argmax(retry_ok, axis=1)
            n_retries = np.where(failed, np.where(recovered, first_ok + 1, 3), 0)
            charges.add(
                account=payer,
                ordinal=ordinal[payer],
                time=at,
                amount=amount,
                status=np.where(failed, FAILED, SUCCEEDED),
                reason=np.where(failed, reason, -1),
                attempt=np.zeros(payer.size, dtype=np.int64),
            )
            failures.push(payer[failed], at[failed])
            for j in range(len(retry_days)):
                tried = n_retries > j
                ok = recovered[tried] & (first_ok[tried] == j)
                retried, when = payer[tried], at[tried] + retry_days[j]
                charges.add(
                    account=retried,
                    ordinal=ordinal[retried],
                    time=when,
                    amount=amount[tried],
                    status=np.where(ok, SUCCEEDED, FAILED),
                    reason=np.where(ok, -1, reason[tried]),
                    attempt=np.full(retried.size, j + 1, dtype=np.int64),
                )
                failures.push(retried[~ok], when[~ok])
            lapsed = failed & ~recovered
            lapse_at[payer[lapsed]] = np.minimum(
                lapse_at[payer[lapsed]], at[lapsed] + retry_days[-1] + 1.0
            )
            bill_k[payer] += 1
            next_bill[payer] = add_months(
                period_start[payer], bill_k[payer] * months[payer], start_day
            )

        # 5. Churn, and perhaps a later comeback.
        gone = churn_at < t1
        if gone.any():
            leaver, left_at = live[gone], churn_at[gone]
            kind = np.where(lapses[gone], ENDED, CANCELED)
            ends.add(account=leaver, ordinal=ordinal[leaver], end=left_at, kind=kind)
            alive[leaver] = False
            lapse_at[leaver] = _INF
            next_bill[leaver] = _INF
            u = rng.random((leaver.size, 2))
            lapsed_out = kind == ENDED
            back = u[:, 0] < np.where(lapsed_out, hz.return_after_lapse, hz.return_after_cancel)
            low = np.where(lapsed_out, hz.lapse_return_gap_days[0], hz.cancel_return_gap_days[0])
            high = np.where(lapsed_out, hz.lapse_return_gap_days[1], hz.cancel_return_gap_days[1])
            next_start[leaver] = np.where(back, left_at + low + u[:, 1] * (high - low), _INF)
            discount[leaver] = np.where(back & ~lapsed_out, hz.winback_discount, discount[leaver])

    periods = _assemble_periods(starts, ends, rng)
    return Lifecycle(
        periods=periods,
        charges=_assemble_charges(charges, periods, rng, horizon_days),
        calls=SupportCalls(
            account=calls.get("account", np.int64),
            time=calls.get("time", np.float64),
            sentiment=calls.get("sentiment", np.int64),
            score=calls.get("score", np.float64),
            duration_s=calls.get("duration_s", np.float64),
        ),
    )


def _period_key(account: Ints, ordinal: Ints) -> Ints:
    key: Ints = account * 4096 + ordinal
    return key


def _assemble_periods(starts: _Columns, ends: _Columns, rng: np.random.Generator) -> Periods:
    account, ordinal = starts.get("account", np.int64), starts.get("ordinal", np.int64)
    order = np.lexsort((ordinal, account))
    account, ordinal = account[order], ordinal[order]
    key = _period_key(account, ordinal)
    end = np.full(account.size, _INF)
    kind = np.full(account.size, ACTIVE, dtype=np.int64)
    row = np.searchsorted(
        key, _period_key(ends.get("account", np.int64), ends.get("ordinal", np.int64))
    )
    end[row] = ends.get("end", np.float64)
    kind[row] = ends.get("kind", np.int64)
    return Periods(
        account=account,
        ordinal=ordinal,
        start=starts.get("start", np.float64)[order],
        end=end,
        kind=kind,
        discount=starts.get("discount", np.float64)[order],
        cancel_reason=rng.integers(0, len(cat.CANCEL_REASONS), account.size).astype(np.int64),
    )


def _assemble_charges(
    charges: _Columns, periods: Periods, rng: np.random.Generator, horizon_days: float
) -> Charges:
    account, time = charges.get("account", np.int64), charges.get("time", np.float64)
    ordinal = charges.get("ordinal", np.int64)
    period = np.searchsorted(
        _period_key(periods.account, periods.ordinal), _period_key(account, ordinal)
    )
    # Retries scheduled past a cancellation (or the data's end) never happened.
    keep = time < np.minimum(periods.end[period], horizon_days)
    order = np.lexsort((time[keep], account[keep]))
    pick = np.flatnonzero(keep)[order]
    period, time = period[pick], time[pick]
    status = charges.get("status", np.int64)[pick]
    # Customers who cancel right after paying often get that charge back.
    cancelled_soon = (periods.kind[period] == CANCELED) & (
        periods.end[period] - time < _REFUND_ON_CANCEL_DAYS
    )
    refund = rng.random(pick.size) < np.where(
        cancelled_soon, _REFUND_ON_CANCEL_SHARE, _REFUND_SHARE
    )
    status = np.where((status == SUCCEEDED) & refund, REFUNDED, status)
    return Charges(
        account=account[pick],
        period=period,
        time=time,
        amount=charges.get("amount", np.float64)[pick],
        status=status,
        reason=charges.get("reason", np.int64)[pick],
        attempt=charges.get("attempt", np.int64)[pick],
    )
