"""The Directory's PATCH (app/domain/directory.py): applied and validated before the write transaction, which only
checks the resource is still what the PATCH was applied to, writes, and settles the roster."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from app.domain import directory as directory_module
from app.domain.bulk import BulkRunner
from app.domain.directory import Context, Directory, PreparedPatch, _BaseMoved
from app.domain.roles import RoleRules
from app.protocol.bulk import BULK_REQUEST, parse_bulk_request
from app.protocol.schema_defs import PATCH_OP, USER_RESOURCE, USER_SCHEMA
from app.storage.interface import Storage, Transaction
from app.storage.records import StoredResource

CTX = Context("http://rollcall.test/scim/v2")


async def stored(database: Storage, user_id: str) -> StoredResource:
    found = await database.read(lambda tx: tx.resources.get(USER_RESOURCE, user_id))
    assert found is not None
    return found


async def test_the_write_of_a_prepared_patch_stores_its_document_as_given(database: Storage) -> None:
    directory = Directory(database, RoleRules())
    user = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": "ada"}, CTX)
    base = await stored(database, user.body["id"])
    # Not what load_resource would make of it (it drops unknown names and refuses a number as a displayName):
    # the write must take the document as validated before it, not validate it again on the writer thread.
    document: dict[str, Any] = {"userName": "ada", "displayName": 7, "notAnAttribute": True}
    await database.write(directory.patching_prepared(USER_RESOURCE, PreparedPatch(base, document, []), CTX))
    assert (await stored(database, base.id)).document == document


async def test_a_prepared_patch_whose_resource_moved_is_not_written(database: Storage) -> None:
    directory = Directory(database, RoleRules())
    user = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": "grace"}, CTX)
    base = await stored(database, user.body["id"])
    await directory.patch(USER_RESOURCE, base.id, {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "title", "value": "admiral"}]}, CTX)
    stale = PreparedPatch(base, {"userName": "grace", "displayName": "stale"}, [])
    with pytest.raises(_BaseMoved):
        await database.write(directory.patching_prepared(USER_RESOURCE, stale, CTX))
    assert (await stored(database, base.id)).document == {"userName": "grace", "title": "admiral"}


def record_validations(database: Storage, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each load_resource or load_patched the Directory calls from now on: whether a write transaction of
    `database` was running on that thread at that moment."""
    in_write = threading.local()
    validated_in_write: list[bool] = []
    real_write = database.write

    async def write(work: Any) -> Any:
        def marked(tx: Transaction) -> Any:
            in_write.active = True
            try:
                return work(tx)
            finally:
                in_write.active = False
        return await real_write(marked)

    def recorded(real_load: Callable[..., Any]) -> Callable[..., Any]:
        def load(*args: Any) -> Any:
            validated_in_write.append(getattr(in_write, "active", False))
            return real_load(*args)
        return load

    monkeypatch.setattr(database, "write", write)
    for name in ("load_resource", "load_patched"):
        monkeypatch.setattr(directory_module, name, recorded(getattr(directory_module, name)))
    return validated_in_write


async def test_patch_validation_never_runs_in_a_write_transaction(database: Storage,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    directory = Directory(database, RoleRules())
    user = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": "linus"}, CTX)
    validated_in_write = record_validations(database, monkeypatch)
    small = [{"op": "replace", "path": "title", "value": "kernel"}]
    large = [{"op": "add", "path": "emails", "value": [{"value": f"e{n}@example.com"} for n in range(200)]}]
    for operations in (small, large):  # validated on the event loop, and on the validator thread
        await directory.patch(USER_RESOURCE, user.body["id"], {"schemas": [PATCH_OP], "Operations": operations}, CTX)
    assert validated_in_write == [False, False]
    assert len((await stored(database, user.body["id"])).document["emails"]) == 200


async def test_bulk_patches_are_validated_before_their_transaction_unless_it_changed_them_first(
        database: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = Directory(database, RoleRules())
    ada = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": "ada"}, CTX)
    bob = await directory.create(USER_RESOURCE, {"schemas": [USER_SCHEMA], "userName": "bob"}, CTX)
    validated_in_write = record_validations(database, monkeypatch)

    def patch(user_id: str, title: str) -> dict[str, Any]:
        return {"method": "PATCH", "path": f"/Users/{user_id}", "data": {
            "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails", "value": [{"value": title}]}]}}

    body = {"schemas": [BULK_REQUEST], "Operations": [
        patch(ada.body["id"], "a1@example.com"), patch(bob.body["id"], "b1@example.com"),
        patch(ada.body["id"], "a2@example.com")]}  # ada again: applied to what the first PATCH made of her
    results = await BulkRunner(directory).run(parse_bulk_request(body, 10), CTX, None)
    assert [r.status for r in results] == [200, 200, 200]
    # Each PATCH was validated before the transaction; the second of ada's again inside it, since the first
    # changed her in the same transaction.
    assert validated_in_write == [False, False, False, True]
    emails = (await stored(database, ada.body["id"])).document["emails"]
    assert [e["value"] for e in emails] == ["a1@example.com", "a2@example.com"]
