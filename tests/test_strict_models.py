"""A third-party client that builds strict models from rollcall's own /Schemas (scim2-client and scim2-models,
extra keys forbidden, as some identity providers do) against `rollcall serve` as a separate process."""

from __future__ import annotations

from tests.conftest import RunningServer


def test_a_client_with_models_from_schemas_creates_a_group_with_members(running_server: RunningServer) -> None:
    """RFC 7643 §8.4's Group: members with `value`, `$ref` and `display`. Without `display` in /Schemas, the
    client's own model refuses the payload and the group never reaches the server."""
    from httpx2 import Client, Timeout
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import SearchRequest

    http = Client(base_url=running_server.base_url + "/", timeout=Timeout(15), trust_env=False,
                  headers={"Authorization": f"Bearer {running_server.token}"})
    try:
        client = SyncSCIMClient(http)
        client.discover()  # /ServiceProviderConfig, /ResourceTypes and /Schemas, into models
        user_model, group_model = client.get_resource_model("User"), client.get_resource_model("Group")
        assert group_model.model_config["extra"] == "forbid"
        member_model = group_model.get_field_root_type("members")
        alice = client.create(user_model(user_name="alice@example.com", display_name="Alice Liddell"))
        bob = client.create(user_model(user_name="bob@example.com"))
        group = client.create(group_model(display_name="rollcall-members", members=[
            member_model(value=alice.id, display="Alice Liddell"), member_model(value=bob.id, display="Bob")]))
        # The answer passed the same strict model. display is returned on request (returned="request" in
        # /Schemas): the member's displayName, else its userName.
        assert sorted(m.value for m in group.members) == sorted([alice.id, bob.id])
        fetched = client.query(group_model, group.id, SearchRequest(attributes=["displayName", "members",
                                                                                 "members.display"]))
        assert sorted((m.value, m.display) for m in fetched.members) == sorted(
            [(alice.id, "Alice Liddell"), (bob.id, "bob@example.com")])
        assert [g.display for g in client.query(user_model, alice.id).groups] == ["rollcall-members"]
    finally:
        http.close()


def test_the_same_client_sends_rfc_3_7_2_as_a_bulk_request(running_server: RunningServer) -> None:
    """scim2-client checks ServiceProviderConfig's bulk limits, sends the BulkRequest and validates the
    BulkResponse with scim2-models."""
    from httpx2 import Client, Timeout
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_models import BulkOperation, BulkRequest

    http = Client(base_url=running_server.base_url + "/", timeout=Timeout(15), trust_env=False,
                  headers={"Authorization": f"Bearer {running_server.token}"})
    try:
        client = SyncSCIMClient(http)
        client.discover()
        user_model, group_model = client.get_resource_model("User"), client.get_resource_model("Group")
        member_model = group_model.get_field_root_type("members")
        answer = client.bulk(BulkRequest[user_model | group_model](operations=[  # type: ignore[valid-type]
            BulkOperation[user_model](method="POST", path="/Users", bulk_id="qwerty",  # type: ignore[valid-type]
                                      data=user_model(user_name="Alice")),
            BulkOperation[group_model](method="POST", path="/Groups", bulk_id="ytrewq",  # type: ignore[valid-type]
                                       data=group_model(display_name="Tour Guides", members=[
                                           member_model(type="User", value="bulkId:qwerty")])),
        ]))
        user_op, group_op = answer.operations
        assert (user_op.status, group_op.status) == (201, 201) and user_op.bulk_id == "qwerty"
        group = client.query(group_model, group_op.location.rsplit("/", 1)[1])
        assert [m.value for m in group.members] == [user_op.location.rsplit("/", 1)[1]]
    finally:
        http.close()
