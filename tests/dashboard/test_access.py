"""The [dashboard] settings, password hashes and masking of personal data."""

from __future__ import annotations

import pytest

from churnwatch.config import parse_settings
from churnwatch.dashboard import hash_password, mask_email, mask_name, verify_password
from churnwatch.errors import ConfigError


def test_a_password_matches_only_its_own_hash() -> None:
    stored = hash_password("a long passphrase")
    assert verify_password("a long passphrase", stored)
    assert not verify_password("a long passphrasE", stored)
    assert not verify_password("", stored)
    # Salted: the same password hashes differently each time.
    assert hash_password("a long passphrase") != stored
    assert "a long passphrase" not in stored


def test_a_short_password_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 8"):
        hash_password("short")


def test_the_settings_take_a_hash_never_a_password() -> None:
    stored = hash_password("a long passphrase")
    settings = parse_settings({"dashboard": {"auth": "password", "password_hash": stored}})
    assert settings.dashboard.auth == "password"
    with pytest.raises(ConfigError, match=r"dashboard\.password_hash"):
        parse_settings({"dashboard": {"auth": "password", "password_hash": "hunter22"}})
    with pytest.raises(ConfigError, match="needs password_hash"):
        parse_settings({"dashboard": {"auth": "password"}})
    with pytest.raises(ConfigError, match=r"dashboard\.auth"):
        parse_settings({"dashboard": {"auth": "ldap"}})


def test_a_forged_hash_is_an_error_not_a_match() -> None:
    with pytest.raises(ConfigError, match="not a scrypt hash"):
        verify_password("anything at all", "plain-text-password")


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("jane.doe@example.com", "j***@e***.com"),
        ("a@b.io", "a***@b***.io"),
        ("ops@mail.acme.co.uk", "o***@m***.uk"),
        ("no-at-sign", "n***"),
    ],
)
def test_emails_keep_only_initials_and_the_top_level(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_names_keep_only_initials() -> None:
    assert mask_name("Ada  King Lovelace") == "A*** K*** L***"
    assert mask_name("") == ""
