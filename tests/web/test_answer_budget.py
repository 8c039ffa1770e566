"""The cap on large answers held for slow readers (app/web/answer_budget.py), its accounting."""

from __future__ import annotations

from app.web.answer_budget import AnswerBudget
from tests.conftest import Scim


def test_reservations_stop_at_the_cap_and_are_given_back() -> None:
    budget = AnswerBudget(100)
    assert budget.try_hold(60) and budget.try_hold(40)
    assert not budget.try_hold(1)
    budget.release(40)
    assert budget.try_hold(30) and budget.held == 90


def test_an_answer_larger_than_the_cap_goes_out_alone() -> None:
    budget = AnswerBudget(100)
    assert budget.try_hold(500)
    assert not budget.try_hold(10)
    budget.release(500)
    assert budget.held == 0 and budget.try_hold(10)


async def test_a_large_answer_is_sent_whole_with_every_header(scim: Scim) -> None:
    for i in range(3):
        await scim.create_user(f"large{i}", nickName="n" * 30_000)
    answer = await scim.get("/Users", headers={"X-Request-Id": "req-42"})
    assert answer.status == 200 and answer.body["itemsPerPage"] == 3
    assert answer.headers["X-Request-Id"] == "req-42"
    assert answer.headers["Content-Type"].startswith("application/scim+json")
    assert int(answer.headers["Content-Length"]) > 90_000
