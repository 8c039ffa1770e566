"""Stories: scripted steps of a company's life in its identity provider, and the roster each step should leave.

A story is a TOML or JSON file (README.md, "See it work"; the built-in one is stories/company.toml). The runner
plays it through a provider, reads the roster from /api/members before and after every step, and reports the
change each step caused next to the roster the story says it should leave.
"""

from __future__ import annotations

import asyncio
import json
import random
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from app.simulator.client import ScimClient
from app.simulator.dialects import Dialect, JumpCloud, Person
from app.simulator.provider import Provider, ProviderError

BUILT_IN = "company.toml"
ACTIONS = ("test-connection", "bind", "join", "leave", "move", "suspend", "reactivate", "delete-user",
           "delete-group", "rename-group")
ORDERS = ("remove-first", "add-first", "seed")
# The documented rule (README "Roles and the roster"), kept here as the story's own expectation of what rollcall
# should do; the simulator is a client and never asks rollcall's domain layer.
ROLE_WORDS = (("admin", "administrators"), ("member", "members"), ("guest", "guests"))


class StoryError(Exception):
    """A story file that cannot be played; the message says where and why."""


@dataclass(frozen=True)
class Step:
    action: str
    say: str
    fields: dict[str, Any]

    def text(self, name: str) -> str:
        value = self.fields.get(name)
        if not isinstance(value, str) or not value:
            raise StoryError(f"step {self.say!r} ({self.action}) needs {name} = \"...\"")
        return value

    def names(self, name: str) -> list[str]:
        value = self.fields.get(name)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise StoryError(f"step {self.say!r} ({self.action}) needs {name} = [\"...\", ...]")
        return value


@dataclass(frozen=True)
class Story:
    title: str
    domain: str
    prefix: str
    pause: float
    seed: int
    names: dict[str, str]
    steps: tuple[Step, ...]

    def person(self, handle: str) -> Person:
        given, _, family = self.names.get(handle, handle.capitalize()).partition(" ")
        return Person(f"{handle}@{self.domain}", given, family)

    def shown(self, user_name: str) -> str:
        return user_name.removesuffix(f"@{self.domain}")


def load_story(path: str | None = None) -> Story:
    """The story in the TOML or JSON file at `path`, or the built-in one."""
    if path is None:
        text = resources.files("app.simulator").joinpath("stories", BUILT_IN).read_text(encoding="utf-8")
        return parse_story(tomllib.loads(text), BUILT_IN)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise StoryError(f"cannot read the story {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise StoryError(f"the story {path} is not valid {'JSON' if path.endswith('.json') else 'TOML'}: "
                         f"{error}") from None
    return parse_story(data, path)


def parse_story(data: Any, where: str) -> Story:
    if not isinstance(data, dict):
        raise StoryError(f"{where}: a story is a table of title, steps and so on")
    raw_steps = data.get("step", data.get("steps"))
    if not isinstance(raw_steps, list) or not raw_steps:
        raise StoryError(f"{where}: a story needs at least one [[step]]")
    steps = []
    for number, raw in enumerate(raw_steps, 1):
        if not isinstance(raw, dict) or raw.get("do") not in ACTIONS:
            raise StoryError(f"{where}: step {number} needs do = one of {', '.join(ACTIONS)}")
        if raw["do"] == "move" and raw.get("order", "seed") not in ORDERS:
            raise StoryError(f"{where}: step {number} order must be one of {', '.join(ORDERS)}")
        steps.append(Step(raw["do"], str(raw.get("say") or raw["do"]), raw))
    names = data.get("people", {})
    pause = data.get("pause", 1.5)
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise StoryError(f"{where}: [people] maps handles to full names, e.g. ada = \"Ada Lovelace\"")
    if not isinstance(pause, int | float) or pause < 0:
        raise StoryError(f"{where}: pause is a number of seconds, 0 or more")
    story = Story(str(data.get("title", where)), str(data.get("domain", "example.com")),
                  str(data.get("group-prefix", "rollcall")), float(pause), int(data.get("seed", 0)), names,
                  tuple(steps))
    for step in story.steps:  # every field a step needs, checked before anything is sent
        _check_fields(step)
    _check_plot(story, where)
    return story


def _check_plot(story: Story, where: str) -> None:
    """Refuse steps about people or groups that do not exist at that point of the story."""
    people: set[str] = set()
    groups: dict[str, set[str]] = {}

    def need(number: int, ok: bool, what: str) -> None:
        if not ok:
            raise StoryError(f"{where}: step {number} ({story.steps[number - 1].action}): {what}")

    for number, step in enumerate(story.steps, 1):
        fields, action = step.fields, step.action
        if action == "bind":
            for group, handles in fields["groups"].items():
                groups.setdefault(group, set()).update(handles)
                people.update(handles)
        elif action == "join":
            groups.setdefault(fields["group"], set()).update(fields["people"])
            people.update(fields["people"])
        elif action == "leave":
            for handle in fields["people"]:
                need(number, handle in groups.get(fields["group"], set()), f"{handle} is not in {fields['group']}")
            groups[fields["group"]] -= set(fields["people"])
        elif action == "move":
            need(number, fields["person"] in groups.get(fields["from"], set()),
                 f"{fields['person']} is not in {fields['from']}")
            groups[fields["from"]].discard(fields["person"])
            groups.setdefault(fields["to"], set()).add(fields["person"])
        elif action in ("suspend", "reactivate", "delete-user"):
            need(number, fields["person"] in people, f"{fields['person']} has not joined yet")
            if action == "delete-user":
                people.discard(fields["person"])
                for members in groups.values():
                    members.discard(fields["person"])
        elif action in ("delete-group", "rename-group"):
            need(number, fields["group"] in groups, f"no group {fields['group']} has been bound yet")
            members = groups.pop(fields["group"])
            if action == "rename-group":
                groups[fields["to"]] = members


def _check_fields(step: Step) -> None:
    needs = {"test-connection": ("user", "group"), "bind": (), "join": ("group",), "leave": ("group",),
             "move": ("person", "from", "to"), "suspend": ("person",), "reactivate": ("person",),
             "delete-user": ("person",), "delete-group": ("group",), "rename-group": ("group", "to")}
    for name in needs[step.action]:
        step.text(name)
    if step.action in ("join", "leave"):
        step.names("people")
    if step.action == "bind":
        groups = step.fields.get("groups")
        if not isinstance(groups, dict) or not groups:
            raise StoryError(f"step {step.say!r} (bind) needs groups = {{ \"<group>\" = [\"handle\", ...] }}")
        for members in groups.values():
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise StoryError(f"step {step.say!r} (bind): each group lists handles")


@dataclass
class Model:
    """What the identity provider knows: who exists, who is active, who is in which group."""

    prefix: str
    active: dict[str, bool] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)

    def role(self, user_name: str) -> str | None:
        if not self.active.get(user_name):
            return None
        names = [name.casefold() for name, members in self.groups.items() if user_name in members]
        for role, word in ROLE_WORDS:
            if any(name.startswith(f"{self.prefix}-{word}".casefold()) for name in names):
                return role
        return None

    def roster(self) -> dict[str, str]:
        return {name: role for name in sorted(self.active) if (role := self.role(name)) is not None}


@dataclass
class StepResult:
    number: int
    step: Step
    changes: list[str]
    expected: dict[str, str]
    actual: dict[str, str]
    note: str = ""
    error: str | None = None
    held: tuple[str, ...] = ()  # userNames kept on the roster by a hold, their change not yet approved

    @property
    def ok(self) -> bool:
        return self.error is None and self.expected == self.actual


@dataclass(frozen=True)
class Listed:
    """One entry of /api/members."""

    user_name: str
    role: str
    hold: str | None = None  # the id of the hold that keeps a departure or demotion from happening yet


Roster = dict[str, Listed]  # user id → its entry


class RosterError(Exception):
    """/api/members did not answer as it should."""


class StoryRunner:
    """Plays a story through a provider (JumpCloud unless told otherwise) against one rollcall."""

    def __init__(self, story: Story, client: ScimClient, dialect: Dialect | None = None) -> None:
        self.story = story
        self.client = client
        self.provider = Provider(dialect or JumpCloud(), client)
        self.model = Model(story.prefix)
        self.events_seen = 0

    async def roster(self) -> Roster:
        reply = await self.client.api("/api/members")
        if reply.status != 200 or not isinstance(reply.body, dict):
            raise RosterError(f"the roster could not be read: {reply.summary()}")
        return {m["id"]: Listed(m["userName"], m["role"], m.get("hold") if m.get("held") else None)
                for m in reply.body.get("members", [])}

    async def _left_reasons(self) -> dict[str, str]:
        """Why each user who left the roster since the last call left it, from the change feed."""
        reasons: dict[str, str] = {}
        while True:
            reply = await self.client.api(f"/api/events?after={self.events_seen}&limit=1000")
            if reply.status != 200 or not isinstance(reply.body, dict):
                return reasons
            events = reply.body.get("events", [])
            for event in events:
                if event.get("type") == "member.left":
                    reasons[event.get("userId", "")] = event.get("reason", "")
            if not events:
                return reasons
            self.events_seen = reply.body.get("next", self.events_seen)

    async def play(self, pace: float = 1.0, report: Callable[[StepResult], Awaitable[None] | None] | None = None
                   ) -> list[StepResult]:
        """Play every step, waiting story.pause times `pace` seconds after each but the last; stops at a failed step."""
        await self._left_reasons()  # start the feed from now
        results = []
        for number, step in enumerate(self.story.steps, 1):
            result = await self.play_step(number, step)
            results.append(result)
            if report is not None:
                shown = report(result)
                if shown is not None:
                    await shown
            if result.error is not None:
                break
            if number < len(self.story.steps):
                await asyncio.sleep(self.story.pause * pace)
        return results

    async def play_step(self, number: int, step: Step) -> StepResult:
        before = await self.roster()
        error = None
        note = ""
        try:
            note = await self._act(number, step)
        except ProviderError as failure:
            error = f"JumpCloud would stop here: {failure}"
        after = await self.roster()
        reasons = await self._left_reasons()
        # The story describes what the stored data implies; a change rollcall's safety nets hold (README: Safety
        # nets) has not happened yet, so held people are compared by neither side.
        held = {entry.user_name for entry in after.values() if entry.hold is not None}
        actual = {entry.user_name: entry.role for entry in sorted(after.values(), key=lambda e: e.user_name)
                  if entry.hold is None}
        expected = {name: role for name, role in self.model.roster().items() if name not in held}
        return StepResult(number, step, self._changes(before, after, reasons), expected, actual, note, error,
                          tuple(sorted(held)))

    def _changes(self, before: Roster, after: Roster, reasons: dict[str, str]) -> list[str]:
        shown = self.story.shown
        changes = [f"+ {shown(entry.user_name)} ({entry.role})" for user_id, entry in after.items()
                   if user_id not in before]
        for user_id, entry in before.items():
            now = after.get(user_id)
            if now is None:
                changes.append(f"- {shown(entry.user_name)} (left: {reasons.get(user_id) or 'left'})")
            elif now.hold is not None and entry.hold is None:
                changes.append(f"~ {shown(entry.user_name)} (held for approval: hold {now.hold})")
            elif now.role != entry.role:
                changes.append(f"{shown(entry.user_name)} {entry.role} → {now.role}")
        return changes

    async def _act(self, number: int, step: Step) -> str:
        story, provider, model = self.story, self.provider, self.model
        action = step.action
        if action == "test-connection":
            await provider.test_connection(story.person(step.text("user")), step.text("group"))
            return "its test user and group were created, then deleted"
        if action == "bind":
            for group, handles in step.fields["groups"].items():
                await self._join(group, handles)
            return ""
        if action == "join":
            await self._join(step.text("group"), step.names("people"))
            return ""
        if action == "leave":
            group, people = step.text("group"), [story.person(h) for h in step.names("people")]
            await provider.remove_from_group(group, people)
            model.groups[group] -= {person.user_name for person in people}
            return ""
        if action == "move":
            return await self._move(number, step)
        if action in ("suspend", "reactivate"):
            person = story.person(step.text("person"))
            await provider.set_active(person, action == "reactivate")
            model.active[person.user_name] = action == "reactivate"
            return ""
        if action == "delete-user":
            person = story.person(step.text("person"))
            await provider.delete_user(person)
            model.active.pop(person.user_name, None)
            for members in model.groups.values():
                members.discard(person.user_name)
            return ""
        if action == "delete-group":
            group = step.text("group")
            await provider.delete_group(group)
            model.groups.pop(group, None)
            return ""
        group, new_name = step.text("group"), step.text("to")  # rename-group
        await provider.rename_group(group, new_name)
        model.groups[new_name] = model.groups.pop(group)
        return ""

    async def _join(self, group: str, handles: list[str]) -> None:
        people = [self.story.person(handle) for handle in handles]
        if people:
            await self.provider.add_to_group(group, people)
        for person in people:
            self.model.active.setdefault(person.user_name, True)
        self.model.groups.setdefault(group, set()).update(person.user_name for person in people)

    async def _move(self, number: int, step: Step) -> str:
        """A role change: two independent group requests (§3.2 R14), in the order the step (or the seed) says."""
        person = self.story.person(step.text("person"))
        source, target = step.text("from"), step.text("to")
        order = step.fields.get("order", "seed")
        if order == "seed":
            order = random.Random(self.story.seed * 1000 + number).choice(("remove-first", "add-first"))
        if order == "remove-first":
            await self.provider.remove_from_group(source, [person])
            self.model.groups[source].discard(person.user_name)
            await self.provider.add_to_group(target, [person])
            note = f"removed from {source} first: off the roster for a moment, back after the add"
        else:
            await self.provider.add_to_group(target, [person])
            await self.provider.remove_from_group(source, [person])
            self.model.groups[source].discard(person.user_name)
            note = f"added to {target} first: a member of both for a moment, its role never lapses"
        self.model.groups.setdefault(target, set()).add(person.user_name)
        return note


def format_step(result: StepResult, total: int) -> str:
    """One line for one step: what happened, and the roster change it caused."""
    changes = ", ".join(result.changes) if result.changes else "no roster change"
    line = f"[{result.number}/{total}] {result.step.say}: {changes}"
    if result.note:
        line += f" ({result.note})"
    if result.error is not None:
        line += f"\n      ✗ {result.error}"
    elif result.expected != result.actual:
        line += f"\n      ✗ the roster is not the one the story describes: expected {result.expected}, " \
                f"got {result.actual}"
    return line
