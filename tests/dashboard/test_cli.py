"""``churnwatch dashboard``: the password hash it prints, and the errors it stops on."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.dashboard import verify_password


def test_hash_password_prints_a_hash_the_dashboard_accepts() -> None:
    result = CliRunner().invoke(
        app, ["dashboard", "--hash-password"], input="open sesame 42\nopen sesame 42\n"
    )
    assert result.exit_code == 0, result.output
    found = re.search(r'password_hash = "(scrypt\$[^"]+)"', result.output)
    assert found is not None, result.output
    assert verify_password("open sesame 42", found.group(1))
    assert not verify_password("open sesame 43", found.group(1))


def test_a_short_password_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(app, ["dashboard", "--hash-password"], input="short\nshort\n")
    assert result.exit_code == 2
    assert "at least 8 characters" in result.output


def test_a_bad_dashboard_section_stops_before_streamlit_starts(tmp_path: Path) -> None:
    (tmp_path / "churnwatch.toml").write_text('[dashboard]\nauth = "password"\n')
    result = CliRunner().invoke(app, ["dashboard", str(tmp_path), "--port", "8599"])
    assert result.exit_code == 2
    assert "needs password_hash" in result.output
    assert "Traceback" not in result.output


def test_a_port_out_of_range_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", str(tmp_path), "--port", "70000"])
    assert result.exit_code == 2
    assert "between 1 and 65535" in result.output
