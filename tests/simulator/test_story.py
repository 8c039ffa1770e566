"""The story runner against a real `rollcall serve`: each step's roster, read from /api/members, is the one the
story describes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.simulator.client import Request, ScimClient
from app.simulator.story import StoryError, StoryRunner, format_step, load_story, parse_story
from tests.conftest import RunningServer, serve_process

MEMBERS = ["ben", "gus", "hana", "ivan", "jo", "kai", "lea", "milo", "nils"]
GUESTS = ["cleo", "nora", "omar", "pia", "quinn", "rosa", "sam"]
# The built-in story, step by step, written out by hand rather than derived from the story's own model.
EXPECTED_CHANGES = [
    [],
    ["+ ada (admin)", "+ ben (member)", "+ cleo (guest)"],
    [f"+ {name} (member)" for name in ("dana", "eli", "fay", "gus", "hana", "ivan")],
    [f"+ {name} (member)" for name in ("jo", "kai", "lea", "milo", "nils")],
    [f"+ {name} (guest)" for name in GUESTS[1:]],
    ["dana member → admin"],
    ["- eli (left: deactivated)"],
    ["- fay (left: user-deleted)"],
    # Seven of twenty leaving at once is a mass removal: held whole for a person to approve (README: Safety nets).
    [f"~ {name} (held for approval: hold …)" for name in GUESTS],
]
FINAL = {f"{name}@acme.example": role for name, role in [("ada", "admin"), ("dana", "admin"),
                                                           *((name, "member") for name in MEMBERS)]}


async def play(server: RunningServer, story: Any) -> list[Any]:
    async with ScimClient(server.base_url, server.token) as client:
        return await StoryRunner(story, client).play(pace=0)


async def test_the_built_in_story_leaves_the_roster_it_describes_at_every_step(running_server: RunningServer
                                                                               ) -> None:
    story = load_story()
    results = await play(running_server, story)
    changes = [sorted(re.sub(r"hold \S+\)", "hold …)", change) for change in result.changes) for result in results]
    assert changes == [sorted(expected) for expected in EXPECTED_CHANGES]
    assert results[-1].held == tuple(sorted(f"{name}@acme.example" for name in GUESTS))
    for result in results:
        assert result.ok, format_step(result, len(results))
        assert result.actual == result.expected
    assert results[1].actual == {"ada@acme.example": "admin", "ben@acme.example": "member",
                                 "cleo@acme.example": "guest"}
    assert len(results[4].actual) == 20  # twenty people joined in waves
    assert results[-1].actual == FINAL
    async with ScimClient(running_server.base_url, running_server.token) as client:
        # Test Connection left nothing behind.
        users = (await client.send(Request("GET", "/Users", (("count", "1000"),)))).body
        assert "jumpcloud-test@acme.example" not in {user["userName"] for user in users["Resources"]}
        groups = (await client.send(Request("GET", "/Groups"))).body
        assert sorted(group["displayName"] for group in groups["Resources"]) == ["rollcall-administrators",
                                                                                 "rollcall-members"]


@pytest.mark.parametrize("order", ["remove-first", "add-first"])
async def test_a_promotion_in_either_order_ends_as_admin(running_server: RunningServer, order: str) -> None:
    story = parse_story({"domain": "x.example", "step": [
        {"do": "bind", "groups": {"rollcall-members": ["ann"], "rollcall-administrators": ["bob"]}},
        {"do": "move", "person": "ann", "from": "rollcall-members", "to": "rollcall-administrators", "order": order},
    ]}, "test")
    _bound, moved = await play(running_server, story)
    assert moved.ok and moved.changes == ["ann member → admin"]
    assert order.split("-")[0] in moved.note
    assert moved.actual == {"ann@x.example": "admin", "bob@x.example": "admin"}


@pytest.fixture
def acme_server(tmp_path: Path, db_location: str) -> Iterator[RunningServer]:
    with serve_process(tmp_path, "--group-prefix", "acme", db=db_location) as server:
        yield server


async def test_a_rollcall_that_decides_roles_otherwise_is_caught(acme_server: RunningServer) -> None:
    results = await play(acme_server, load_story())
    assert not results[1].ok and results[1].actual == {}
    assert "✗ the roster is not the one the story describes" in format_step(results[1], 9)


def test_a_story_file_in_json_plays_like_toml(tmp_path: Path) -> None:
    path = tmp_path / "story.json"
    path.write_text('{"title": "t", "step": [{"do": "join", "group": "rollcall-guests", "people": ["g"]}]}')
    story = load_story(str(path))
    assert story.title == "t" and story.steps[0].action == "join"


@pytest.mark.parametrize(("text", "message"), [
    ('[[step]]\ndo = "dance"', "needs do = one of"),
    ('[[step]]\ndo = "join"\ngroup = "g"', 'needs people = ["...", ...]'),
    ('[[step]]\ndo = "move"\nperson = "a"\nfrom = "x"\nto = "y"\norder = "sideways"', "order must be one of"),
    ("title = ", "is not valid TOML"),
    ('title = "no steps"', "needs at least one [[step]]"),
    ('[[step]]\ndo = "suspend"\nperson = "eve"', "step 1 (suspend): eve has not joined yet"),
    ('[[step]]\ndo = "join"\ngroup = "g"\npeople = ["a"]\n[[step]]\ndo = "move"\nperson = "a"\nfrom = "h"\n'
     'to = "g"', "step 2 (move): a is not in h"),
    ('[[step]]\ndo = "delete-group"\ngroup = "g"', "no group g has been bound yet"),
])
def test_a_story_that_cannot_be_played_is_refused_before_anything_is_sent(tmp_path: Path, text: str,
                                                                          message: str) -> None:
    path = tmp_path / "story.toml"
    path.write_text(text)
    with pytest.raises(StoryError, match=re.escape(message)):
        load_story(str(path))
