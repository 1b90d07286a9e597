"""Who the customers are: CSMs, accounts with their static traits, and their users.

Static traits are drawn once per account: the observable ones end up in the
``accounts`` table (plan, region, referral channel, CSM, seats, ...), the
latent ones (activity level, satisfaction, how fragile the payment card is)
only show through behaviour. Both feed the churn hazard of
:mod:`churnwatch.simulate._drivers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from churnwatch.simulate import _catalog as cat
from churnwatch.simulate._drivers import HAZARD
from churnwatch.simulate._sampling import Bools, Floats, Ints, draw_categories

__all__ = ["AccountBlock", "CsmDirectory", "UserBlock", "draw_accounts", "draw_csms", "draw_users"]

#: Share of accounts that signed up before the period starts (up to two years before).
_EXISTING_SHARE = 0.35
_EXISTING_SPAN_DAYS = 730.0
#: Signups grow through the period: the rate at its end is (1 + growth) times the rate at start.
_SIGNUP_GROWTH = 1.0
#: Managed accounts per CSM.
_ACCOUNTS_PER_CSM = 120
_UNMAPPED_CSM_SHARE = 0.08


@dataclass(frozen=True)
class CsmDirectory:
    """The customer-success managers, grouped by the region they cover."""

    csm_id: tuple[str, ...]
    name: tuple[str, ...]
    email: tuple[str, ...]
    slack_user_id: tuple[str | None, ...]
    region: Ints
    team: Ints
    #: ``region_first[r]`` is the first CSM of region ``r`` (CSMs are sorted by region).
    region_first: Ints
    region_count: Ints


def draw_csms(rng: np.random.Generator, n_accounts: int) -> CsmDirectory:
    """Draw a CSM directory sized to the expected number of managed accounts.

    Every region gets at least one CSM; a few CSMs have no Slack id, as when
    an e-mail lookup failed, so that notification code meets unmapped owners.
    """
    managed = n_accounts * sum(p * c for p, c in zip(cat.PLAN_SHARES, cat.CSM_SHARE, strict=True))
    total = max(len(cat.REGIONS), ceil(managed / _ACCOUNTS_PER_CSM))
    counts = np.maximum(1, np.round(total * np.asarray(cat.REGION_SHARES))).astype(np.int64)
    n = int(counts.sum())
    region = np.repeat(np.arange(len(cat.REGIONS), dtype=np.int64), counts)
    first = rng.integers(0, len(cat.FIRST_NAMES), n)
    last = rng.integers(0, len(cat.LAST_NAMES), n)
    team = rng.integers(0, len(cat.CSM_TEAMS), n).astype(np.int64)
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    slack_chars = alphabet[rng.integers(0, alphabet.size, (n, 9))]
    n_unmapped = max(1, round(n * _UNMAPPED_CSM_SHARE))
    unmapped = set(rng.choice(n, size=n_unmapped, replace=False).tolist())

    width = max(4, len(str(n)))
    names: list[str] = []
    emails: list[str] = []
    slack: list[str | None] = []
    seen: dict[str, int] = {}
    for i in range(n):
        given, family = cat.FIRST_NAMES[first[i]], cat.LAST_NAMES[last[i]]
        names.append(f"{given} {family}")
        local = f"{given}.{family}".lower()
        # Two CSMs may share a name but never an e-mail: Slack is looked up by e-mail.
        seen[local] = seen.get(local, 0) + 1
        suffix = "" if seen[local] == 1 else str(seen[local])
        emails.append(f"{local}{suffix}@{cat.CSM_DOMAIN}")
        slack.append(None if i in unmapped else "U0" + "".join(slack_chars[i]))
    return CsmDirectory(
        csm_id=tuple(f"csm_{i + 1:0{width}d}" for i in range(n)),
        name=tuple(names),
        email=tuple(emails),
        slack_user_id=tuple(slack),
        region=region,
        team=team,
        region_first=np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64),
        region_count=counts,
    )


@dataclass(frozen=True)
class AccountBlock:
    """Static traits of a block of consecutive accounts (codes index :mod:`_catalog`)."""

    index: Ints  # global 0-based account number
    created: Floats  # days since the period start
    plan: Ints
    region: Ints
    platform: Ints
    referral: Ints
    industry: Ints
    csm: Ints  # index into the CSM directory, -1 when unmanaged
    n_users: Ints
    seats: Ints
    annual: Bools
    discount: Floats  # discount of the first subscription period
    gmv: Floats
    activity: Floats  # relative rate of usage events
    satisfaction: Floats  # latent, standard normal
    fail_prob: Floats  # chance that one charge fails
    call_rate: Floats  # support calls per live day
    log_hazard: Floats  # static part of the log churn hazard
    name_words: Ints  # (n, 3): adjective, noun, suffix

    @property
    def size(self) -> int:
        """Number of accounts in the block."""
        return int(self.index.size)

    @property
    def list_mrr(self) -> Floats:
        """Monthly price of the seats before any discount."""
        mrr: Floats = np.asarray(cat.SEAT_PRICE)[self.plan] * self.seats
        return mrr


def draw_accounts(
    rng: np.random.Generator,
    first_index: int,
    size: int,
    horizon_days: float,
    csms: CsmDirectory,
) -> AccountBlock:
    """Draw the static traits of accounts ``first_index .. first_index + size - 1``."""
    plan = draw_categories(rng, cat.PLAN_SHARES, size)
    region = draw_categories(rng, cat.REGION_SHARES, size)
    platform = draw_categories(rng, cat.PLATFORM_SHARES, size)
    referral = draw_categories(rng, cat.REFERRAL_SHARES, size)
    industry = rng.integers(0, len(cat.INDUSTRIES), size).astype(np.int64)

    # Signup density grows linearly through the period; invert its CDF.
    u = rng.random((size, 7))
    existing = u[:, 0] < _EXISTING_SHARE
    g = _SIGNUP_GROWTH
    new_at = horizon_days * (np.sqrt(1.0 + (2.0 * g + g * g) * u[:, 1]) - 1.0) / g
    created = np.where(existing, -_EXISTING_SPAN_DAYS * u[:, 1] - 1e-3, new_at)

    annual = u[:, 2] < np.asarray(cat.ANNUAL_SHARE)[plan]
    has_csm = u[:, 3] < np.asarray(cat.CSM_SHARE)[plan]
    csm = np.where(
        has_csm,
        csms.region_first[region] + np.floor(u[:, 4] * csms.region_count[region]).astype(np.int64),
        -1,
    ).astype(np.int64)
    promo = ~annual & (u[:, 5] < 0.1)
    discount = np.where(annual, 0.15, np.where(promo, 0.10, 0.0))

    n_users = np.asarray(cat.FIRST_USERS)[plan] + rng.poisson(
        np.asarray(cat.EXTRA_USERS_MEAN)[plan]
    )
    seats = n_users + rng.poisson(np.asarray(cat.SPARE_SEATS_MEAN)[plan])
    normals = rng.standard_normal((size, 3))
    activity_z, satisfaction = normals[:, 0], normals[:, 1]
    gmv = np.round(np.asarray(cat.GMV_MEDIAN)[plan] * np.exp(0.8 * normals[:, 2]), 2)
    # Bigger teams do more; the per-seat intensity is what the hazard reads.
    activity = np.exp(0.6 * activity_z) * n_users**0.6

    # Most cards fail rarely; a few are fragile and fail often.
    fragile = u[:, 6] < 0.08
    fail_prob = np.where(
        fragile, 0.30, np.minimum(0.5, 0.03 * np.exp(0.5 * rng.standard_normal(size)))
    )
    call_rate = 0.25 / 30.0 * np.exp(-0.4 * satisfaction) * np.where(plan == 2, 1.5, 1.0)

    hz = HAZARD
    log_hazard = (
        np.asarray(hz.plan_log)[plan]
        + np.asarray(hz.referral_log)[referral]
        + np.where(has_csm, hz.csm_log, 0.0)
        + np.where(annual, hz.annual_log, 0.0)
        + hz.activity_log_per_sd * activity_z
        + hz.satisfaction_log_per_sd * satisfaction
    )
    name_words = np.stack(
        (
            rng.integers(0, len(cat.ADJECTIVES), size),
            rng.integers(0, len(cat.NOUNS), size),
            rng.integers(0, len(cat.COMPANY_SUFFIXES), size),
        ),
        axis=1,
    ).astype(np.int64)
    return AccountBlock(
        index=np.arange(first_index, first_index + size, dtype=np.int64),
        created=created,
        plan=plan,
        region=region,
        platform=platform,
        referral=referral,
        industry=industry,
        csm=csm,
        n_users=n_users.astype(np.int64),
        seats=seats.astype(np.int64),
        annual=annual,
        discount=discount,
        gmv=gmv,
        activity=activity,
        satisfaction=satisfaction,
        fail_prob=fail_prob,
        call_rate=call_rate,
        log_hazard=log_hazard,
        name_words=name_words,
    )


@dataclass(frozen=True)
class UserBlock:
    """Users of a block, sorted by account then signup time."""

    account: Ints  # block-local account row
    created: Floats
    ordinal: Ints  # 0 for the account's first user (its admin)
    first_name: Ints
    last_name: Ints
    role: Ints

    @property
    def size(self) -> int:
        """Number of users."""
        return int(self.account.size)


def draw_users(rng: np.random.Generator, accounts: AccountBlock, horizon_days: float) -> UserBlock:
    """Draw the users of each account: the first signs up with the account, the rest later.

    Users who would join after the observation end do not exist yet and are dropped.
    """
    account = np.repeat(np.arange(accounts.size, dtype=np.int64), accounts.n_users)
    first_row = np.concatenate(([0], np.cumsum(accounts.n_users)[:-1]))
    is_first = np.zeros(account.size, dtype=np.bool_)
    is_first[first_row[accounts.n_users > 0]] = True
    delay = np.where(is_first, 0.0, rng.exponential(30.0, account.size))
    created = accounts.created[account] + delay
    keep = created < horizon_days
    account, created, is_first = account[keep], created[keep], is_first[keep]
    order = np.lexsort((created, account))
    account, created, is_first = account[order], created[order], is_first[order]
    ordinal = np.arange(account.size, dtype=np.int64) - np.searchsorted(account, account)
    u = rng.random((account.size, 3))
    role = np.where(is_first, 0, np.where(u[:, 2] < 0.8, 1, 2)).astype(np.int64)
    return UserBlock(
        account=account,
        created=created,
        ordinal=ordinal,
        first_name=np.floor(u[:, 0] * len(cat.FIRST_NAMES)).astype(np.int64),
        last_name=np.floor(u[:, 1] * len(cat.LAST_NAMES)).astype(np.int64),
        role=role,
    )
