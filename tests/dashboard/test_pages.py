"""Every dashboard page, run by Streamlit's AppTest on the sample project.

The expected figures are read from the generation's own tables with pyarrow
(not through the dashboard's code), so a page that filters or sums wrongly
fails.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from streamlit.testing.v1 import AppTest

from churnwatch.dashboard import APP_FILE
from churnwatch.views import current_generation

PAGES = ("overview", "at_risk", "account", "retention", "segments", "model", "interventions")


def _open(page: str | None = None) -> AppTest:
    app = AppTest.from_file(str(APP_FILE), default_timeout=60)
    app.run()
    if page is not None:
        app.switch_page(f"pages/{page}.py").run()
    return app


def _no_exception(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def _accounts(project: Path):  # type: ignore[no-untyped-def]
    return current_generation(project / "views").read("accounts")


def _metric(app: AppTest, label: str) -> str:
    found = [m.value for m in app.metric if m.label == label]
    assert found, f"no metric {label!r} among {[m.label for m in app.metric]}"
    return str(found[0])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_an_exception(
    page: str, sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open(page)
    _no_exception(app)
    assert app.title[0].value.lower().startswith(page.split("_")[0][:5])
    # A page that had to fall back to "not computed yet" would show an info box.
    assert not [i.value for i in app.info if "not computed yet" in i.value]
    assert app.get("plotly_chart") or app.dataframe


def test_overview_shows_the_kpis_and_the_churn_spike(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open("overview")
    accounts = _accounts(sample_project)
    assert _metric(app, "Accounts") == f"{accounts.num_rows:,}"
    active = pc.sum(pc.equal(accounts["status"], "active")).as_py()
    assert _metric(app, "Active accounts") == f"{active:,}"
    at_risk = pc.sum(accounts["revenue_at_risk"]).as_py()
    assert _metric(app, "Revenue at risk") == f"{at_risk:,.0f}"
    assert any("Churn spike" in e.value for e in app.error)
    assert len(app.get("plotly_chart")) == 3


def test_sidebar_filters_change_every_figure(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    accounts = _accounts(sample_project)
    in_emea = accounts.filter(pc.equal(accounts["region"], "emea"))
    assert 0 < in_emea.num_rows < accounts.num_rows
    app = _open()
    app.sidebar.multiselect(key="filter_region").set_value(["emea"]).run()
    _no_exception(app)
    assert _metric(app, "Accounts") == f"{in_emea.num_rows:,}"
    # AppTest keeps the main script's sidebar in its tree for the first run only
    # (a browser keeps it on every page, see test_browser.py): later runs set the
    # filters through the session state the widgets are keyed on.
    app.session_state["filter_region"] = ["emea"]
    app.switch_page("pages/at_risk.py").run()
    shown = app.dataframe[0].value
    assert set(shown["region"]) == {"emea"}
    assert any(f"{in_emea.num_rows:,} accounts match" in c.value for c in app.caption)
    riskiest = in_emea.sort_by([("churn_risk", "descending")])["account_id"][0].as_py()
    assert shown["account_id"].iloc[0] == riskiest
    # Two filters combine.
    both = in_emea.filter(pc.equal(in_emea["plan"], "enterprise"))
    app.session_state["filter_region"] = ["emea"]
    app.session_state["filter_plan"] = ["enterprise"]
    app.run()
    assert any(f"{both.num_rows:,} accounts match" in c.value for c in app.caption)
    # The segment scatter keeps only the filtered accounts' points.
    app.session_state["filter_segment"] = ["power users"]
    app.switch_page("pages/segments.py").run()
    _no_exception(app)
    points = current_generation(sample_project / "views").read("segment_points")
    power = pc.sum(pc.equal(points["segment"], "power users")).as_py()
    assert any(f"{power:,} sampled accounts" in c.value for c in app.caption)
    # Interventions: only episodes of the chosen region.
    app.session_state["filter_region"] = ["emea"]
    app.switch_page("pages/interventions.py").run()
    _no_exception(app)
    everywhere = _open("interventions")
    assert int(_metric(app, "Episodes")) < int(_metric(everywhere, "Episodes"))


def test_at_risk_pages_through_the_list(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open("at_risk")
    first = app.dataframe[0].value
    assert len(first) == 50
    assert list(first["churn_risk"]) == sorted(first["churn_risk"], reverse=True)
    app.number_input(key="at_risk_page").set_value(2).run()
    second = app.dataframe[0].value
    assert set(first["account_id"]).isdisjoint(second["account_id"])
    assert second["churn_risk"].max() <= first["churn_risk"].min()
    assert app.get("download_button")


def test_names_and_emails_are_masked_by_default(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open("at_risk")
    shown = app.dataframe[0].value
    assert all(re.fullmatch(r"\w\*\*\* \w\*\*\*", name) for name in shown["name"])
    assert all(re.fullmatch(r"\w\*\*\*@\w\*\*\*\.com", email) for email in shown["email"])
    real = set(_accounts(sample_project)["email"].to_pylist())
    assert real.isdisjoint(shown["email"])


def test_personal_data_is_shown_when_allowed(
    own_project: Path, use_project: Callable[[Path], None]
) -> None:
    with (own_project / "churnwatch.toml").open("a") as file:
        file.write("\n[dashboard]\nshow_personal_data = true\n")
    use_project(own_project)
    app = _open("at_risk")
    shown = app.dataframe[0].value
    assert set(shown["email"]) <= set(_accounts(own_project)["email"].to_pylist())


def test_the_account_page_shows_the_linked_account(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    accounts = _accounts(sample_project)
    chosen = accounts.slice(7, 1).to_pylist()[0]
    app = AppTest.from_file(str(APP_FILE), default_timeout=60)
    app.run()
    app.query_params["account"] = chosen["account_id"]
    app.switch_page("pages/account.py").run()
    _no_exception(app)
    assert app.selectbox(key="account_pick").value == chosen["account_id"]
    assert _metric(app, "Churn risk") == f"{chosen['churn_risk']:.1%}"
    assert any(chosen["reason_1"] in m.value for m in app.markdown)
    assert len(app.get("plotly_chart")) == 2  # activity and risk history


def test_survival_by_attribute_shows_the_log_rank_test(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open("retention")
    assert "plan" in app.selectbox(key="km_attribute").options
    app.selectbox(key="km_attribute").set_value("plan").run()
    _no_exception(app)
    assert any("Log-rank test" in m.value and "3 groups" in m.value for m in app.markdown)


def _plotly_values(values: object) -> np.ndarray:
    """A trace's numbers: a list, or plotly's typed array (``dtype`` and base64 ``bdata``)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    return np.asarray(values, dtype=float)


def test_sidebar_filters_refit_the_survival_curves(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(sample_project)
    app = _open("retention")
    app.session_state["filter_region"] = ["emea"]
    app.selectbox(key="km_attribute").set_value("plan").run()
    _no_exception(app)
    generation = current_generation(sample_project / "views")
    accounts = generation.read("accounts").to_pandas()
    lives = generation.read("survival_durations").to_pandas()
    kept = accounts.loc[accounts["region"] == "emea", ["account_id", "plan"]]
    lives = lives.merge(kept, on="account_id")
    figure = app.get("plotly_chart")[-1].proto.spec
    traces = [t for t in json.loads(figure)["data"] if t.get("name")]
    assert sorted(t["name"] for t in traces) == sorted(lives["plan"].unique())
    for trace in traces:
        rows = lives.loc[lives["plan"] == trace["name"]]
        expected = KaplanMeierFitter().fit(rows["duration_days"], rows["event_observed"])
        days = _plotly_values(trace["x"])
        want = expected.survival_function_at_times(days).to_numpy()
        assert np.allclose(_plotly_values(trace["y"]), want, atol=1e-9)
    # The log-rank test is of the filtered accounts too.
    test = multivariate_logrank_test(lives["duration_days"], lives["plan"], lives["event_observed"])
    shown = [m.value for m in app.markdown if "Log-rank test" in m.value]
    assert shown
    assert f"χ² = {test.test_statistic:.2f}" in shown[0]


def test_the_win_loss_form_records_an_outcome(
    own_project: Path, use_project: Callable[[Path], None]
) -> None:
    from churnwatch.outcomes import list_outcomes
    from churnwatch.store import open_store

    use_project(own_project)
    app = _open("interventions")
    before = len(list_outcomes(open_store("sqlite:///churnwatch_ops.sqlite", base_dir=own_project)))
    episode = app.selectbox[0].options[0]
    app.radio[0].set_value("won")
    app.text_area[0].input("renewed after a call")
    app.button[0].click().run()
    _no_exception(app)
    assert any("Recorded won" in s.value for s in app.success)
    store = open_store("sqlite:///churnwatch_ops.sqlite", base_dir=own_project)
    answers = list_outcomes(store)
    assert len(answers) == before + 1
    assert answers[0].source == "dashboard"
    assert answers[0].notes == "renewed after a call"
    assert answers[0].account_id in episode


def test_a_wrong_password_is_refused(
    own_project: Path, use_project: Callable[[Path], None]
) -> None:
    from churnwatch.dashboard import hash_password

    stored = hash_password("s3cret-passphrase")
    with (own_project / "churnwatch.toml").open("a") as file:
        file.write(f'\n[dashboard]\nauth = "password"\npassword_hash = "{stored}"\n')
    use_project(own_project)
    app = _open()
    assert not app.metric  # nothing of the data before logging in
    app.text_input[0].input("not-the-password")
    app.button[0].click().run()
    assert [e.value for e in app.error] == ["Wrong password."]
    assert not app.metric
    app.text_input[0].input("s3cret-passphrase")
    app.button[0].click().run()
    _no_exception(app)
    assert [t.value for t in app.title] == ["Overview"]
    assert _metric(app, "Accounts")


def test_pages_cope_with_missing_tables(
    sample_project: Path, tmp_path: Path, use_project: Callable[[Path], None]
) -> None:
    from churnwatch.views import write_generation

    accounts = _accounts(sample_project).select(["account_id", "name", "email", "region"])
    write_generation(tmp_path / "views", {"accounts": accounts}, {"project": "bare"})
    use_project(tmp_path)
    for page in PAGES:
        app = _open(page)
        _no_exception(app)
        hints = [i.value for i in app.info]
        assert any("churnwatch" in hint for hint in hints), (page, hints)


def test_no_read_model_says_how_to_compute_it(
    tmp_path: Path, use_project: Callable[[Path], None]
) -> None:
    use_project(tmp_path)
    app = _open()
    _no_exception(app)
    assert any("churnwatch views refresh" in i.value for i in app.info)


@pytest.mark.parametrize(("sort_by", "offset"), [("mrr", 30), ("churn_risk", 0), ("mrr", 190)])
def test_deep_pages_fetched_by_id_match_the_plain_list(
    sample_project: Path, sort_by: str, offset: int
) -> None:
    from churnwatch.dashboard import _data
    from churnwatch.views import AccountFilter, ReadModel

    model = ReadModel(sample_project / "views")
    filters = AccountFilter(region=("emea", "na"))
    columns = ["account_id", "name", "mrr", "churn_risk"]
    late = _data.account_page(
        model, filters, sort_by=sort_by, descending=True, offset=offset, limit=25,
        columns=columns, late_from_offset=0,
    )  # fmt: skip
    plain = model.accounts_page(
        filters, sort_by=sort_by, descending=True, offset=offset, limit=25, columns=columns
    )
    assert late.rows.to_pylist() == plain.rows.to_pylist()
    assert late.total == plain.total


def test_oidc_login_without_its_setup_says_what_is_missing(
    own_project: Path, use_project: Callable[[Path], None]
) -> None:
    with (own_project / "churnwatch.toml").open("a") as file:
        file.write('\n[dashboard]\nauth = "oidc"\n')
    use_project(own_project)
    app = _open()
    _no_exception(app)
    assert not app.metric
    messages = [e.value for e in app.error]
    assert len(messages) == 1
    assert "Authlib" in messages[0] or "secrets.toml" in messages[0]


def test_interventions_follow_the_account_filters(
    sample_project: Path, use_project: Callable[[Path], None]
) -> None:
    from churnwatch.outcomes import episode_frame
    from churnwatch.store import open_store

    store = open_store("sqlite:///churnwatch_ops.sqlite", base_dir=sample_project)
    episodes = episode_frame(store)
    accounts = _accounts(sample_project)
    enterprise = set(
        accounts.filter(pc.equal(accounts["plan"], "enterprise"))["account_id"].to_pylist()
    )
    expected = int(episodes["account_id"].isin(enterprise).sum())
    use_project(sample_project)
    app = _open()
    app.session_state["filter_plan"] = ["enterprise"]
    app.switch_page("pages/interventions.py").run()
    _no_exception(app)
    assert int(_metric(app, "Episodes")) == expected < len(episodes)


def test_the_csv_download_holds_the_filtered_accounts_masked(sample_project: Path) -> None:
    import functools
    import io

    import pyarrow.csv as pacsv

    from churnwatch.dashboard import _context, _data
    from churnwatch.views import AccountFilter, ReadModel

    model = ReadModel(sample_project / "views")
    filters = AccountFilter(risk_tier=("high", "medium"))
    data = _data.accounts_csv(
        model,
        filters,
        sort_by="revenue_at_risk",
        descending=True,
        columns=["account_id", "name", "email", "revenue_at_risk", "risk_tier"],
        mask=functools.partial(_context.mask_frame, visible=False),
    )
    table = pacsv.read_csv(io.BytesIO(data))
    accounts = _accounts(sample_project)
    wanted = accounts.filter(pc.is_in(accounts["risk_tier"], pa.array(["high", "medium"])))
    assert table.num_rows == wanted.num_rows
    assert set(table["risk_tier"].to_pylist()) <= {"high", "medium"}
    revenue = table["revenue_at_risk"].to_pylist()
    assert revenue == sorted(revenue, reverse=True)
    assert all(re.fullmatch(r"\w\*\*\*@\w\*\*\*\.com", e) for e in table["email"].to_pylist())


def test_a_refresh_shows_up_without_a_restart(
    own_project: Path, use_project: Callable[[Path], None]
) -> None:
    import time

    from churnwatch.views import write_generation

    use_project(own_project)
    app = _open()
    before = _metric(app, "Accounts")
    generation = current_generation(own_project / "views")
    tables = {name: generation.read(name) for name in generation.tables}
    tables["accounts"] = tables["accounts"].slice(0, 150)
    write_generation(own_project / "views", tables, generation.meta)
    time.sleep(1.1)  # the read model looks for a new generation at most once a second
    app.run()
    _no_exception(app)
    assert (before, _metric(app, "Accounts")) == ("200", "150")
