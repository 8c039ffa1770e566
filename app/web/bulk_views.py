"""POST /Bulk (RFC 7644 §3.7): a thin view over domain.bulk."""

from __future__ import annotations

from aiohttp import web

from app.domain.bulk import BulkRunner
from app.domain.directory import encoded_size
from app.protocol import errors
from app.protocol.bulk import bulk_response, parse_bulk_request
from app.web.http import read_json, scim_response
from app.web.keys import DIRECTORY, SETTINGS
from app.web.scim_views import context


async def bulk(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = settings.bulk_max_payload_bytes
    # A Bulk body has its own limit, maxPayloadSize, which ServiceProviderConfig announces (not --max-body-bytes).
    sized = request.clone(client_max_size=limit)
    try:
        body = await read_json(sized, limit)
    except (web.HTTPRequestEntityTooLarge, errors.ScimError) as error:
        if isinstance(error, errors.ScimError) and error.status != 413:
            raise
        # RFC 7644 §3.7.4: 413, and the error names the limit that was exceeded (sent or once decompressed).
        raise errors.ScimError(413, f"The size of the bulk operation exceeds the maxPayloadSize ({limit:,} bytes) "
                                    "of this server's ServiceProviderConfig (--bulk-max-payload-bytes). Split it "
                                    "into smaller Bulk requests.") from None
    parsed = parse_bulk_request(body, settings.bulk_max_operations)
    # The size the operations are validated at decides whether that runs off the loop: the decoded body's, as
    # for any other request (a gzip body a few KiB long can decode to the whole maxPayloadSize).
    results = await BulkRunner(request.app[DIRECTORY]).run(parsed, context(request), encoded_size(body))
    return scim_response(bulk_response(results))
