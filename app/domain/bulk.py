"""Running a Bulk request (RFC 7644 §3.7): each operation exactly as its own request would run, through the
Directory's own transactions, in the order protocol.bulk plans.

Every operation runs in a savepoint of its own, so one that fails is undone alone, and its roster changes and
change-feed events are written with it. The operations are committed in batches (one transaction and one thread
hop per OPERATIONS_PER_TRANSACTION operations, most of a small write's cost), and the answer goes out only after
the last batch has committed, so the whole request is durable before its answer. Between batches other
clients' writes get their turn, so they are not held up for the length of a whole Bulk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.domain.directory import (
    Context,
    Directory,
    PreparedPatch,
    Write,
    encoded_size,
    etag_of,
    new_id,
    off_loop_if_large,
)
from app.protocol import errors
from app.protocol.bulk import (
    REFERENCE_PREFIX,
    SUCCESS_STATUS,
    BulkOperation,
    BulkRequest,
    BulkResult,
    Plan,
    circular_reference,
    plan,
    resolve_references,
    unresolved_reference,
)
from app.protocol.patch_message import PatchOperation, parse_patch_request
from app.protocol.schema_defs import ResourceType
from app.storage.errors import TransactionConflict
from app.storage.interface import Transaction

log = logging.getLogger("rollcall.bulk")

# Operations per write transaction: 100 user POSTs hold the writer about 10 ms (1,000 of them ran as ten batches
# of 9-11 ms each on the development machine), so other requests' writes wait at most about that long behind a
# Bulk, while a commit is still shared by many operations.
OPERATIONS_PER_TRANSACTION = 100


@dataclass
class _Prepared:
    """An operation after validation: the id it acts on (references resolved), and what it writes."""

    resource_id: str | None = None
    payload: Any = None  # a validated document (POST, PUT) or parsed PatchOp operations (PATCH)
    error: errors.ScimError | None = None


@dataclass
class _Progress:
    """What the operations that ran so far did, carried from each batch of one request to the next."""

    errors: int = 0
    stopped: bool = False
    failed: set[str] = field(default_factory=set)  # the bulkIds whose POST failed

    def copy(self) -> _Progress:
        return _Progress(self.errors, self.stopped, set(self.failed))


class BulkRunner:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def run(self, request: BulkRequest, ctx: Context, size: int | None) -> list[BulkResult]:
        """Run every operation of `request` (a body of `size` bytes) and return their results in the request's
        order; after failOnErrors errors the rest do not run and have no result."""
        the_plan = plan(request.operations)
        # The POSTs' ids are chosen now, so that every reference can be resolved (and every body validated)
        # before anything runs; a reference to a POST that then fails makes its operation fail instead.
        ids = {bulk_id: new_id() for bulk_id in the_plan.declared}
        prepared = await off_loop_if_large(size, self._prepare_all, request.operations, ids)
        results: dict[int, BulkResult] = {}
        progress = _Progress()
        order = the_plan.order
        for start in range(0, len(order), OPERATIONS_PER_TRANSACTION):
            batch = [(request.operations[i], prepared[i]) for i in order[start:start + OPERATIONS_PER_TRANSACTION]]
            patches = await self._patches_of(batch, size)
            steps = [(operation, ready, self._write_of(operation, ready, ctx, patches.get(operation.index)))
                     for operation, ready in batch]

            def run_batch(tx: Transaction, steps: list[Any] = steps, before: _Progress = progress
                          ) -> tuple[_Progress, dict[int, BulkResult]]:
                # A body may be run again (Storage.write): each run starts from the progress before the batch, and
                # what it did counts only once the batch has committed.
                now = before.copy()
                done: dict[int, BulkResult] = {}
                for operation, ready, write in steps:
                    if request.fail_on_errors is not None and now.errors >= request.fail_on_errors:
                        now.stopped = True
                        break
                    result = self._run_one(tx, operation, ready, write, the_plan, now.failed, ctx)
                    if result.error is not None:
                        now.errors += 1
                        # Only the POST that declares a bulkId fails it: a later one repeating it is refused alone.
                        if the_plan.declared.get(operation.bulk_id or "") == operation.index:
                            now.failed.add(operation.bulk_id or "")
                    done[operation.index] = result
                return now, done

            progress, done = await self.directory.db.write(run_batch)
            results.update(done)
            if progress.stopped:
                break
        return [results[index] for index in sorted(results)]

    def _prepare_all(self, operations: list[BulkOperation], ids: dict[str, str]) -> list[_Prepared]:
        return [self._prepare(operation, ids) for operation in operations]

    def _prepare(self, operation: BulkOperation, ids: dict[str, str]) -> _Prepared:
        """Resolve the operation's references and validate its data as its own request would be validated."""
        if operation.error is not None:
            return _Prepared(error=operation.error)
        assert operation.resource_type is not None
        resource_id = operation.resource_id
        if resource_id is not None and resource_id.startswith(REFERENCE_PREFIX):
            resource_id = ids.get(resource_id[len(REFERENCE_PREFIX):], resource_id)
        elif operation.method == "POST":
            resource_id = ids[operation.bulk_id] if operation.bulk_id in ids else new_id()
        data = resolve_references(operation.data, ids)
        payload: Any  # a validated document (POST, PUT) or parsed PatchOp operations (PATCH)
        try:
            if operation.method in ("POST", "PUT"):
                payload = self.directory.validate(operation.resource_type, data, encoded_size(data))
            elif operation.method == "PATCH":
                payload = parse_patch_request(data)
            else:
                payload = None
        except errors.ScimError as error:
            return _Prepared(resource_id, error=error)
        return _Prepared(resource_id, payload)

    async def _patches_of(self, batch: list[tuple[BulkOperation, _Prepared]], size: int | None
                          ) -> dict[int, PreparedPatch | None]:
        """The batch's PATCHes applied and validated before its transaction (Directory.prepare_patches), by index."""
        indexes: list[int] = []
        patches: list[tuple[ResourceType, str, list[PatchOperation]]] = []
        for operation, ready in batch:
            if operation.method == "PATCH" and ready.error is None and operation.resource_type is not None \
                    and ready.resource_id is not None:
                indexes.append(operation.index)
                patches.append((operation.resource_type, ready.resource_id, ready.payload))
        if not patches:
            return {}
        return dict(zip(indexes, await self.directory.prepare_patches(patches, size), strict=True))

    def _write_of(self, operation: BulkOperation, ready: _Prepared, ctx: Context,
                  patch: PreparedPatch | None) -> Write[Any] | None:
        """The Directory's own transaction for the operation (None when it cannot run)."""
        if ready.error is not None:
            return None
        resource_type, resource_id = operation.resource_type, ready.resource_id
        assert resource_type is not None and resource_id is not None
        if operation.method == "POST":
            return self.directory.creating(resource_type, ready.payload, ctx, resource_id)
        if operation.method == "PUT":
            return self.directory.replacing(resource_type, resource_id, ready.payload, ctx, operation.version)
        if operation.method == "PATCH":
            return self.directory.patching(resource_type, resource_id, ready.payload, ctx, operation.version, patch)
        return self.directory.deleting(resource_type, resource_id, ctx, operation.version)

    def _run_one(self, tx: Transaction, operation: BulkOperation, ready: _Prepared, write: Write[Any] | None,
                 the_plan: Plan, failed: set[str], ctx: Context) -> BulkResult:
        error = ready.error or _reference_error(operation, the_plan, failed)
        written = None
        if error is None and write is not None:
            try:
                with tx.savepoint():
                    written = write(tx)
            except errors.ScimError as refused:
                error = refused
            except TransactionConflict:
                raise  # the engine runs the whole batch again; not this operation's failure
            except Exception:
                # As for a request of its own: logged, answered with a plain 500, and this operation alone undone.
                log.exception("unhandled error in operation %d of a Bulk request (%s)", operation.index + 1,
                              operation.method)
                error = errors.ScimError(500, "rollcall hit an internal error; the server log has details.")
        location = self._location(operation, ready, the_plan, failed, ctx) \
            if error is None or operation.method != "POST" else None
        if error is not None:
            return BulkResult(operation.method, operation.bulk_id, error.status, location, error=error)
        assert operation.method is not None
        version = etag_of(written[0].version) if written is not None else None
        return BulkResult(operation.method, operation.bulk_id, SUCCESS_STATUS[operation.method], location, version)

    @staticmethod
    def _location(operation: BulkOperation, ready: _Prepared, the_plan: Plan, failed: set[str], ctx: Context
                  ) -> str | None:
        """The resource's URI, when the operation names one that exists (or that it created)."""
        path_id = operation.resource_id
        if path_id is not None and path_id.startswith(REFERENCE_PREFIX):
            bulk_id = path_id[len(REFERENCE_PREFIX):]
            if bulk_id not in the_plan.declared or bulk_id in failed or operation.index in the_plan.circular:
                return None
        if operation.resource_type is None or ready.resource_id is None:
            return None
        return f"{ctx.base_url}{operation.resource_type.endpoint}/{ready.resource_id}"


def _reference_error(operation: BulkOperation, the_plan: Plan, failed: set[str]) -> errors.ScimError | None:
    if operation.index in the_plan.circular:
        return circular_reference(operation)
    for bulk_id in sorted(operation.references):
        if bulk_id not in the_plan.declared or bulk_id in failed:
            return unresolved_reference(operation, bulk_id, bulk_id in the_plan.declared)
    return None
