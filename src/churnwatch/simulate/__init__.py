"""A realistic, seeded simulator of a subscription business, for demos and tests.

:func:`simulate` writes every canonical table of :mod:`churnwatch.schema` as
Parquet: a CSM directory, accounts and their users, subscription periods that
renew, cancel, lapse after failed payments and sometimes come back, charge
attempts with dunning retries and refunds, a product event log, and daily
adoption snapshots of managed accounts.

Churn is not sprinkled on at random: each live account has a daily hazard
built from the :data:`DRIVERS` (low engagement, failed payments, negative
support calls, plan, acquisition channel, tenure, CSM coverage, billing
period), and engagement fades over the 30-45 days before a cancellation. A
churn model trained on the output should therefore recover those drivers,
and ignore the :data:`NEUTRAL_SIGNALS`.

Everything is vectorised with numpy over blocks of 1,000 accounts and
streamed to Parquet, so a million accounts and fifty million events fit in
minutes and a few hundred megabytes; the same parameters and seed give
byte-identical files.

Examples
--------
>>> import tempfile
>>> from churnwatch.simulate import simulate
>>> with tempfile.TemporaryDirectory() as tmp:
...     result = simulate(tmp, n_accounts=100, end="2024-06-30", events_per_account=20)
...     sorted(result.counts)
['accounts', 'adoption_snapshots', 'csms', 'events', 'payments', 'subscriptions', 'users']
"""

from __future__ import annotations

from churnwatch.simulate._drivers import DRIVERS, NEUTRAL_SIGNALS, ChurnDriver
from churnwatch.simulate._run import SimulationResult, simulate

__all__ = ["DRIVERS", "NEUTRAL_SIGNALS", "ChurnDriver", "SimulationResult", "simulate"]
