"""A PATCH is applied and validated before its write transaction, to the resource as it was read (app/domain/
directory.py): a PATCH that races another write must still end with both changes, or with 412 when the client
sent If-Match with the version it read."""

from __future__ import annotations

import asyncio

from tests.conftest import USER_SCHEMA, Scim

RACERS = 12


async def test_concurrent_patches_of_one_user_keep_every_change(scim: Scim) -> None:
    user = await scim.create_user("racer")
    path = f"/Users/{user['id']}"

    async def add_email(n: int) -> int:
        answer = await scim.patch(path, [{"op": "add", "path": "emails", "value": [{"value": f"e{n}@example.com"}]}])
        return answer.status

    # All read the same version before the first write commits: each write but one finds it moved, and is applied
    # again to what the others left.
    assert await asyncio.gather(*(add_email(n) for n in range(RACERS))) == [200] * RACERS
    emails = (await scim.get(path)).body["emails"]
    assert sorted(e["value"] for e in emails) == sorted(f"e{n}@example.com" for n in range(RACERS))


async def test_a_patch_racing_a_put_of_other_attributes_keeps_both(scim: Scim) -> None:
    user = await scim.create_user("pair")
    path = f"/Users/{user['id']}"
    for round_ in range(8):
        # The PUT first, so that the PATCH most often reads while the PUT's write is queued or committing.
        put, patched = await asyncio.gather(
            scim.put(path, {"schemas": [USER_SCHEMA], "userName": "pair", "displayName": f"name {round_}"}),
            scim.patch(path, [{"op": "replace", "path": "title", "value": f"title {round_}"}]))
        assert (patched.status, put.status) == (200, 200), (patched.body, put.body)
        now = (await scim.get(path)).body
        # Whichever landed first, the PATCH was applied to a document the PUT wrote or will overwrite: never to
        # a stale one that would undo the PUT's displayName.
        assert now["displayName"] == f"name {round_}"
        assert now.get("title") in (f"title {round_}", None)
        if now.get("title") is None:
            assert patched.body.get("displayName") != f"name {round_}"  # the PATCH went first; the PUT replaced it


async def test_concurrent_patches_with_if_match_of_one_version_leave_one_winner_and_412s(scim: Scim) -> None:
    user = await scim.create_user("guarded")
    path = f"/Users/{user['id']}"
    etag = user["meta"]["version"]

    async def add_email(n: int) -> tuple[int, str]:
        answer = await scim.patch(path, [{"op": "add", "path": "emails", "value": [{"value": f"g{n}@example.com"}]}],
                                  headers={"If-Match": etag})
        return answer.status, answer.body.get("detail", "")

    answers = await asyncio.gather(*(add_email(n) for n in range(RACERS)))
    assert sorted(status for status, _ in answers) == [200] + [412] * (RACERS - 1)
    assert all("has changed" in detail and etag in detail for status, detail in answers if status == 412)
    assert len((await scim.get(path)).body["emails"]) == 1


async def test_member_patches_do_not_conflict_with_a_concurrent_rename(scim: Scim) -> None:
    users = [(await scim.create_user(f"m{n}"))["id"] for n in range(RACERS)]
    group = await scim.create_group("renamed")
    path = f"/Groups/{group['id']}"
    etag = group["meta"]["version"]
    jobs = [scim.patch(path, [{"op": "add", "path": "members", "value": [{"value": user_id}]}]) for user_id in users]
    jobs.append(scim.patch(path, [{"op": "replace", "path": "displayName", "value": "renamed-2"}]))
    answers = await asyncio.gather(*jobs)
    assert [a.status for a in answers] == [200] * (RACERS + 1)
    now = (await scim.get(path)).body
    assert now["displayName"] == "renamed-2" and {m["value"] for m in now["members"]} == set(users)
    assert now["meta"]["version"] != etag
