"""The vocabulary of the simulated business: plans, regions, channels, events, names.

Categorical attributes are drawn as integer codes and only turned into
strings when a block is written, by taking from the tuples below; so the
order of every tuple is part of the simulator's output and must not change
without a reason. Shares are probabilities in the same order.
"""

from __future__ import annotations

__all__ = [
    "ADJECTIVES",
    "COMPANY_SUFFIXES",
    "CSM_DOMAIN",
    "EVENT_PROPERTIES",
    "EVENT_TYPES",
    "FAILURE_REASONS",
    "FIRST_NAMES",
    "INDUSTRIES",
    "LAST_NAMES",
    "LOCAL_HOUR_WEIGHTS",
    "NOUNS",
    "PLANS",
    "PLATFORMS",
    "PRODUCTS",
    "REFERRALS",
    "REGIONS",
    "SENTIMENTS",
    "USAGE_EVENT_SHARES",
    "WEEKDAY_ACTIVITY",
]

# --- plans: index 0 basic, 1 pro, 2 enterprise -------------------------------------------
PLANS = ("basic", "pro", "enterprise")
PLAN_SHARES = (0.60, 0.30, 0.10)
SEAT_PRICE = (15.0, 35.0, 60.0)  # per seat per month
ANNUAL_SHARE = (0.10, 0.25, 0.60)  # share billed yearly
CSM_SHARE = (0.0, 0.55, 0.95)  # share with a customer-success manager
FIRST_USERS = (1, 2, 5)  # users every account of the plan has
EXTRA_USERS_MEAN = (1.5, 4.0, 15.0)  # Poisson mean of further users
SPARE_SEATS_MEAN = (0.5, 2.0, 10.0)  # paid seats beyond the users
GMV_MEDIAN = (8_000.0, 60_000.0, 600_000.0)  # monthly gross merchandise value

# --- geography: offsets are the typical local time of the region's customers ---------------
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_SHARES = (0.45, 0.30, 0.17, 0.08)
REGION_UTC_OFFSET_H = (-6.0, 1.0, 8.0, -4.0)
REGION_CURRENCY = ("USD", "EUR", "USD", "USD")
REGION_TIMEZONE = ("America/Chicago", "Europe/Berlin", "Asia/Singapore", "America/Sao_Paulo")

PLATFORMS = ("web", "ios", "android")
PLATFORM_SHARES = (0.55, 0.25, 0.20)

REFERRALS = ("organic", "paid_ads", "partner", "referral", "outbound_sales")
REFERRAL_SHARES = (0.35, 0.25, 0.15, 0.15, 0.10)

INDUSTRIES = (
    "retail",
    "ecommerce",
    "saas",
    "education",
    "healthcare",
    "hospitality",
    "media",
    "logistics",
    "fintech",
    "nonprofit",
)

# --- events -----------------------------------------------------------------------------------
# Usage events first (drawn with USAGE_EVENT_SHARES), then support calls, which the
# lifecycle draws separately because their sentiment feeds back into churn.
EVENT_TYPES = (
    "login",
    "session",
    "feature_use",
    "report_viewed",
    "invite_sent",
    "message_sent",
    "support_call",
)
USAGE_EVENT_SHARES = (0.30, 0.30, 0.22, 0.10, 0.02, 0.06)
SUPPORT_CALL = EVENT_TYPES.index("support_call")
SESSION = EVENT_TYPES.index("session")
#: Event types whose properties carry the account's platform rather than a random variant.
PLATFORM_EVENTS = (EVENT_TYPES.index("login"), SESSION)

FEATURES = ("dashboard", "export", "api", "automation", "billing", "integrations")
REPORTS = ("revenue", "retention", "cohorts", "usage")
SENTIMENTS = ("negative", "neutral", "positive")

#: The JSON ``properties`` each event type can carry, by variant code.
EVENT_PROPERTIES: tuple[tuple[str, ...], ...] = (
    tuple(f'{{"platform": "{p}"}}' for p in PLATFORMS),
    tuple(f'{{"platform": "{p}"}}' for p in PLATFORMS),
    tuple(f'{{"feature": "{f}"}}' for f in FEATURES),
    tuple(f'{{"report": "{r}"}}' for r in REPORTS),
    ('{"role": "member"}', '{"role": "admin"}'),
    ('{"channel": "chat"}', '{"channel": "email"}'),
    tuple(f'{{"sentiment": "{s}", "channel": "phone"}}' for s in SENTIMENTS),
)

#: Relative activity by day of week, Monday first: a business tool, quiet at weekends.
WEEKDAY_ACTIVITY = (1.0, 1.0, 1.0, 1.0, 0.9, 0.35, 0.3)
#: Relative activity by local hour of day.
LOCAL_HOUR_WEIGHTS = (
    (0.15,) * 6 + (0.4, 0.7) + (1.0,) * 4 + (0.8,) + (1.0,) * 5 + (0.6, 0.5, 0.4, 0.3, 0.2, 0.15)
)

# --- payments ---------------------------------------------------------------------------------
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card")
FAILURE_REASON_SHARES = (0.50, 0.30, 0.20)
#: Probability that one retry of a charge that failed for this reason succeeds.
RETRY_SUCCESS = (0.45, 0.55, 0.35)
#: Days after the failed charge at which the dunning process retries it.
RETRY_DAYS = (3.0, 8.0, 15.0)
CANCEL_REASONS = (
    "too_expensive",
    "missing_features",
    "switched_competitor",
    "no_longer_needed",
    "poor_support",
)

# --- adoption report: index 0 is the core product every managed account has ----------------
PRODUCTS = ("payments", "invoicing", "capital")
PRODUCT_SHARES = (1.0, 0.25, 0.08)
PRODUCT_ADOPTION_DAYS = (0.0, 60.0, 120.0)  # mean delay from signup to adoption

# --- names ------------------------------------------------------------------------------------
ADJECTIVES = (
    "Blue", "Bright", "Cedar", "Clear", "Copper", "Crimson", "Golden", "Green", "Harbor",
    "Iron", "Juniper", "Lucky", "Maple", "Misty", "North", "Oak", "Orange", "Pine", "Quiet",
    "Rapid", "Red", "River", "Rocky", "Silver", "Solar", "Stone", "Summit", "Swift", "True",
    "Urban", "Velvet", "West", "Wild", "Willow", "Young", "Zen",
)  # fmt: skip
NOUNS = (
    "Anchor", "Badger", "Bakery", "Beacon", "Bloom", "Bridge", "Canyon", "Circle", "Compass",
    "Crane", "Falcon", "Field", "Forge", "Fox", "Garden", "Grove", "Hive", "Lantern", "Leaf",
    "Meadow", "Mill", "Orchard", "Otter", "Peak", "Pepper", "Pixel", "Rabbit", "Sparrow",
    "Spring", "Tide", "Trail", "Valley", "Wave", "Wolf",
)  # fmt: skip
COMPANY_SUFFIXES = (
    "Labs", "Co", "Studio", "Group", "Goods", "Supply", "Works", "Digital", "Partners",
    "Collective", "Systems", "Market",
)  # fmt: skip
FIRST_NAMES = (
    "Ada", "Ahmed", "Aiko", "Alex", "Amara", "Ana", "Arjun", "Ben", "Carla", "Chen", "Chloe",
    "Daniel", "Diego", "Elena", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines",
    "Ivan", "Jamal", "Jia", "Jonas", "Kai", "Laura", "Leo", "Lina", "Lucas", "Maria", "Mateo",
    "Maya", "Mei", "Mohammed", "Nadia", "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa",
    "Sam", "Sara", "Sofia", "Tariq", "Tom", "Uma", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Ahmed", "Alvarez", "Becker", "Brown", "Chen", "Costa", "Das", "Diaz", "Dubois",
    "Evans", "Fischer", "Garcia", "Gupta", "Hansen", "Ito", "Jensen", "Kim", "Kowalski", "Lee",
    "Lopez", "Martin", "Meyer", "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Patel", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki",
    "Tanaka", "Taylor", "Walker", "Wang", "Weber", "Wilson", "Yamamoto", "Zhang",
)  # fmt: skip
USER_ROLES = ("admin", "member", "viewer")
CSM_TEAMS = ("Onboarding", "Growth", "Strategic")
#: Domain of the simulated vendor's staff (RFC 2606 reserves ``.example``).
CSM_DOMAIN = "churnwatch-demo.example"
