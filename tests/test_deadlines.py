from datetime import date

import pytest

from pipolicy_cli import deadlines


@pytest.mark.parametrize(
    "received, due",
    [
        (date(2026, 9, 28), date(2026, 10, 23)),
        (date(2026, 9, 30), date(2026, 10, 27)),
        (date(2026, 10, 3), date(2026, 10, 27)),   # a Saturday inside the National Day holiday
        (date(2026, 10, 10), date(2026, 10, 30)),  # the make-up working Saturday itself is not counted
        (date(2026, 2, 13), date(2026, 3, 12)),    # Spring Festival 2-15..2-23, make-up Saturdays 2-14 and 2-28
    ],
)
def test_pipl_working_days(received, due):
    assert deadlines.due("pipl", received).due_on == due


def test_gdpr_month_and_extension():
    assert deadlines.due("gdpr", date(2026, 1, 31)).due_on == date(2026, 2, 28)
    assert deadlines.extended("gdpr", date(2026, 2, 28)) == date(2026, 4, 28)
    assert deadlines.extended("pipl", date(2026, 2, 28)) is None


def test_ccpa_days_and_acknowledgment():
    plan = deadlines.due("ccpa", date(2026, 11, 20))
    assert plan.due_on == date(2027, 1, 4)
    assert plan.acknowledge_by == date(2026, 12, 8)  # Thanksgiving and the day after are not business days
    assert deadlines.extended("ccpa", plan.due_on) == date(2027, 2, 18)


def test_every_rule_names_its_source():
    for code in ("pipl", "gdpr", "ccpa"):
        assert "(" in deadlines.due(code, date(2026, 3, 2)).rule
