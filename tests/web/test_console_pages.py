"""The console's pages render seeded data over real HTTP: members (counts, search, role filter, keyset pages),
a person (why, status, timeline), groups, activity (newest first, ?type=, the live stream); identity-provider
values are escaped; every answer has the security headers and no inline script or style."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from app.config import Settings
from app.storage.factory import open_storage
from app.storage.interface import Transaction
from tests.web.conftest import Console

ADMINS, MEMBERS, GUESTS = "rollcall-administrators", "rollcall-members", "rollcall-guests"
EVIL = '<script>alert("owned")</script>'


async def _seed(console: Console) -> dict[str, Any]:
    scim = console.scim
    ann = await scim.create_user("ann@acme.com", displayName="Ann Admin", emails=[{"value": "ann@acme.com"}])
    bob = await scim.create_user("bob@acme.com", displayName="Bob Member")
    cat = await scim.create_user("cat@acme.com", displayName="Cat Guest")
    dan = await scim.create_user("dan@acme.com")
    evil = await scim.create_user("evil@acme.com", displayName=EVIL)
    await scim.create_group(ADMINS, [ann["id"]])
    await scim.create_group(MEMBERS, [ann["id"], bob["id"], evil["id"]])
    await scim.create_group(GUESTS, [cat["id"]])
    await scim.create_group("engineering", [dan["id"], bob["id"]])
    return {"ann": ann, "bob": bob, "cat": cat, "dan": dan, "evil": evil}


def _rows(text: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', text)


async def test_the_members_page_lists_the_roster_with_roles_groups_and_counts(signed_in: Console) -> None:
    people = await _seed(signed_in)
    page = await signed_in.get("/console/members")
    assert page.status == 200 and '<table id="members">' in page.text
    assert _rows(page.text, "data-user-id") == [people[n]["id"] for n in ("ann", "bob", "cat", "evil")]
    ann_row = page.text.split(f'data-user-id="{people["ann"]["id"]}"')[1].split("</tr>")[0]
    assert f'<a href="/console/members/{people["ann"]["id"]}">Ann Admin</a>' in ann_row
    assert "ann@acme.com" in ann_row and '<span class="role role-admin">admin</span>' in ann_row
    assert ADMINS in ann_row and MEMBERS not in ann_row  # the groups that grant the role shown
    counts = page.text.split('<dl id="role-counts"')[1].split("</dl>")[0]
    assert re.findall(r"<dt>(\w+)</dt><dd>(\d+)</dd>", counts) == [("admin", "1"), ("member", "2"), ("guest", "1")]
    assert '<form role="search"' in page.text and '<label for="q">Search</label>' in page.text


async def test_search_and_the_role_filter_narrow_the_members(signed_in: Console) -> None:
    people = await _seed(signed_in)
    assert _rows((await signed_in.get("/console/members?q=BOB")).text, "data-user-id") == [people["bob"]["id"]]
    assert _rows((await signed_in.get("/console/members?role=member")).text, "data-user-id") == [
        people["bob"]["id"], people["evil"]["id"]]
    assert _rows((await signed_in.get("/console/members?role=guest&q=cat")).text, "data-user-id") == [
        people["cat"]["id"]]
    assert 'id="no-members"' in (await signed_in.get("/console/members?q=nobody-at-all")).text
    assert (await signed_in.get("/console/members?role=owner")).status == 400
    assert (await signed_in.get("/console/members?page=not-a-cursor")).status == 400


async def test_members_are_paged_by_keyset_links(signed_in: Console) -> None:
    users = [await signed_in.scim.create_user(f"user{n:03}@acme.com") for n in range(60)]
    await signed_in.scim.create_group(MEMBERS, [u["id"] for u in users])
    first = await signed_in.get("/console/members?role=member")
    assert _rows(first.text, "data-user-id") == [u["id"] for u in users[:50]]
    link = re.search(r'<a href="(/console/members\?[^"]+)" rel="next">', first.text)
    assert link and "role=member" in link.group(1)
    second = await signed_in.get(link.group(1).replace("&amp;", "&"))
    assert _rows(second.text, "data-user-id") == [u["id"] for u in users[50:]]
    assert 'rel="next"' not in second.text and "First page" in second.text


async def test_a_person_page_says_why_in_a_sentence_and_in_detail(signed_in: Console, settings: Settings) -> None:
    people = await _seed(signed_in)
    page = await signed_in.get(f"/console/members/{people['ann']['id']}")
    assert page.status == 200 and page.text.count("<h1>") == 1 and "<h1>Ann Admin</h1>" in page.text
    why = re.search(r'<p id="why" class="why">([^<]+)</p>', page.text)
    assert why and re.fullmatch(rf"admin because member of {ADMINS} since \d+ \w+ \d{{4}}; also in {MEMBERS}",
                                why.group(1)), why
    assert '<dd id="status">member</dd>' in page.text
    timeline = page.text.split('<ol id="timeline"')[1].split("</ol>")[0]
    assert 'data-type="member.joined"' in timeline and "joined as admin" in timeline
    # "since" is when the granting group took them in, not when the person page was read.
    ann_id = people["ann"]["id"]

    def rejoin_on_3_november(tx: Transaction) -> None:
        [admins] = [g.group_id for g in tx.members.groups_of([ann_id])[ann_id] if g.display == ADMINS]
        tx.members.remove(admins, [ann_id])
        tx.members.add_users(admins, [ann_id], "2026-11-03T09:00:00.000000Z")

    storage = open_storage(settings.db_path, must_exist=True)  # another connection, as another process has
    await storage.open()
    try:
        await storage.write(rejoin_on_3_november)
    finally:
        await storage.close()
    again = await signed_in.get(f"/console/members/{people['ann']['id']}")
    assert f"admin because member of {ADMINS} since 3 Nov 2026; also in {MEMBERS}" in again.text
    dan = await signed_in.get(f"/console/members/{people['dan']['id']}")
    assert "no role: in no role group; also in engineering" in dan.text
    assert (await signed_in.get("/console/members/no-such-id")).status == 404


async def test_the_groups_page_puts_role_groups_first_with_member_counts(signed_in: Console) -> None:
    await _seed(signed_in)
    page = await signed_in.get("/console/groups")
    rows = re.findall(r'<tr data-group-id="[^"]+">\s*<td>([^<]+)</td>\s*<td>(\d+)</td>\s*<td>(.*?)</td>',
                      page.text, re.S)
    assert [(name, count, re.sub(r"<[^>]+>", "", grants)) for name, count, grants in rows] == [
        (ADMINS, "1", "admin"), (GUESTS, "1", "guest"), (MEMBERS, "3", "member"), ("engineering", "2", "none")]


async def test_the_activity_page_is_newest_first_and_filters_by_type(signed_in: Console) -> None:
    await _seed(signed_in)
    page = await signed_in.get("/console/events")
    seqs = [int(s) for s in re.findall(r'<li data-seq="(\d+)"', page.text)]
    assert seqs and seqs == sorted(seqs, reverse=True)
    # Membership events carry ids only: the page names the user and the group.
    assert f"ann@acme.com added to group {ADMINS}" in page.text
    joined = await signed_in.get("/console/events?type=member.joined")
    types = set(re.findall(r'data-type="([^"]+)"', joined.text.split('<ol id="events"')[1]))
    assert types == {"member.joined"} and "ann@acme.com joined as admin" in joined.text
    family = await signed_in.get("/console/events?type=user")
    assert set(re.findall(r'<li data-seq="\d+" data-type="([^"]+)"', family.text)) == {"user.created"}
    assert (await signed_in.get("/console/events?type=<x>")).status == 400
    assert '<script src="/console/static/events.js" defer></script>' in page.text


async def test_identity_provider_values_are_shown_as_text(signed_in: Console) -> None:
    people = await _seed(signed_in)
    await signed_in.scim.create_group(f"{MEMBERS}-{EVIL}", [people["dan"]["id"]])
    escaped = "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;"
    for path in ("/console/members", f"/console/members/{people['evil']['id']}", "/console/groups",
                 f"/console/members/{people['dan']['id']}", "/console/events"):
        page = await signed_in.get(path)
        assert page.status == 200 and EVIL not in page.text and "<script>alert" not in page.text, path
        assert escaped in page.text or "&lt;script&gt;" in page.text, path


PAGES = ("/console/members", "/console/groups", "/console/events", "/console/tokens", "/console/webhooks",
         "/console/holds")


async def test_every_console_answer_has_the_security_headers_and_no_inline_script_or_style(signed_in: Console
                                                                                          ) -> None:
    people = await _seed(signed_in)
    answers = [await signed_in.get(path) for path in (*PAGES, f"/console/members/{people['ann']['id']}",
                                                      "/console/members/missing", "/console/nothing",
                                                      "/console/static/console.css", "/console/static/events.js")]
    answers.append(await signed_in.post("/console/tokens", {"name": "x"}))  # a CSRF refusal
    signed_in.client.session.cookie_jar.clear()
    answers += [await signed_in.get("/"), await signed_in.get("/console/members"), await signed_in.sign_in("bad")]
    for answer in answers:
        csp = answer.headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'self'") and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        if answer.headers.get("Content-Type", "").startswith("text/html"):
            assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), "an inline script"
            assert "<style" not in answer.text and " style=" not in answer.text, "an inline style"
    # The API's answers are as before: no console headers.
    api = await signed_in.client.get("/scim/v2/ServiceProviderConfig")
    assert "Content-Security-Policy" not in api.headers


async def test_every_page_has_one_h1_a_main_and_the_navigation(signed_in: Console) -> None:
    for path in PAGES:
        page = await signed_in.get(path)
        assert page.status == 200, path
        assert page.text.count("<h1>") == 1 and '<main id="main">' in page.text, path
        nav = page.text.split('<nav aria-label="Console">')[1].split("</nav>")[0]
        assert re.findall(r'<a href="[^"]+"[^>]*>(\w+)</a>', nav) == ["Members", "Groups", "Activity", "Tokens",
                                                                      "Webhooks", "Holds"], path
        assert '<button type="submit">Sign out</button>' in page.text


async def _read_change(response: Any) -> dict[str, Any]:
    """The next `change` event of a server-sent event stream."""
    event = None
    while True:
        line = (await response.content.readline()).decode().rstrip("\r\n")
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event == "change":
            return json.loads(line[len("data: "):])


async def test_the_activity_stream_delivers_a_new_event_to_a_signed_in_page(signed_in: Console) -> None:
    await _seed(signed_in)
    page = await signed_in.get("/console/events")
    stream_url = re.search(r'data-stream="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    newest = int(re.search(r'<li data-seq="(\d+)"', page.text).group(1))
    response = await signed_in.client.get(stream_url)
    try:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        erin = await signed_in.scim.create_user("erin@acme.com")
        groups = (await signed_in.scim.get('/Groups?filter=displayName eq "rollcall-members"')).body["Resources"]
        await signed_in.scim.patch(f"/Groups/{groups[0]['id']}", [
            {"op": "add", "path": "members", "value": [{"value": erin["id"]}]}])
        seen = []
        async with asyncio.timeout(30):
            while not any(e["type"] == "member.joined" for e in seen):
                seen.append(await _read_change(response))
        assert all(e["seq"] > newest for e in seen)
        joined = next(e for e in seen if e["type"] == "member.joined")
        assert joined["text"] == "erin@acme.com joined as member (through rollcall-members)"
    finally:
        response.close()


async def test_the_activity_stream_needs_a_session(console: Console) -> None:
    answer = await console.client.get("/console/events/stream")
    assert answer.status == 401


async def test_an_open_stream_keeps_no_session_alive_and_ends_with_it(signed_in: Console) -> None:
    """Nobody used the console for 9 hours; an activity tab left open does not count as use."""
    from app.domain.sessions import IDLE_SECONDS

    response = await signed_in.client.get("/console/events/stream?after=0")
    try:
        assert response.status == 200
        for _ in range(3):  # 9 hours in all, the stream polling the session between the steps
            signed_in.clock.advance(IDLE_SECONDS * 3 / 8)
            await asyncio.sleep(1.5)
        async with asyncio.timeout(30):
            while await response.content.readline():
                pass  # until the server ends the stream
    finally:
        response.close()
    assert (await signed_in.get("/console/members")).status == 303
