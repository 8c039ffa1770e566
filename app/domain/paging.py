"""Pages of a list or search: by cursor (RFC 9865) and by startIndex (RFC 7644 §3.4.2.4), both by keyset.

A page is read from where the last one ended by seeking through the index that orders the rows, never by
counting rows from the start: by cursor, the position travels in the cursor itself; by startIndex, the
position where each page ended is remembered (PageHints) so that the next page (startIndex = previous
startIndex + itemsPerPage) seeks too. Both make the last page of 100,000 users cost what the first does.
A startIndex nobody ended a page at (a client jumping) seeks from the nearest anchor (every ANCHOR_EVERY-th
row's key, found once per view of the data); only a sorted search still counts rows from its start (OFFSET).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocol import cursors, errors
from app.protocol.resolved import SearchQuery
from app.storage.interface import Storage, Transaction
from app.storage.records import Key, StoredResource

# Render `found` onto the page within the byte budget: (tx, search, found, page, used) -> (kept, used).
Render = Callable[[Transaction, SearchQuery, list[StoredResource], list[orjson.Fragment], int],
                  tuple[int, int]]

_CURSOR_KEY_SETTING = "cursor_key"


def cursor_key(tx: Transaction) -> bytes:
    """The key cursors are signed with: made once per database and kept in it, so that cursors outlive a restart
    (cursorTimeout promises they stay valid that long) and every process serving the file accepts them."""
    stored = tx.settings.get(_CURSOR_KEY_SETTING)
    if stored is None:
        stored = secrets.token_hex(32)
        tx.settings.put(_CURSOR_KEY_SETTING, stored)
    return bytes.fromhex(stored)


def shape_of(searches: Sequence[SearchQuery]) -> str:
    """The fingerprint of what a query selects and in what order: a cursor is valid only for its own."""
    return cursors.fingerprint([s.shape() for s in searches])


@dataclass(frozen=True)
class Page:
    total: int
    resources: list[orjson.Fragment]
    next_position: cursors.Position | None = None
    previous_position: cursors.Position | None = None
    last: cursors.Position | None = None  # the page's last row, in the query's order


class PageHints:
    """What recent pages found out, for the pages after them: the number of matches of each search, the
    position of the row each index page ended at, and anchors (the key of every ANCHOR_EVERY-th row of a
    search). An entry is trusted only by a transaction that sees the very data it was made from (the same
    `view`: Storage.generation unchanged and even, or the same engine snapshot), so a hint is never stale."""

    MAX = 256

    def __init__(self, db: Storage) -> None:
        self.db = db
        self._entries: OrderedDict[Any, tuple[Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()  # pages are read on several reader threads at once

    def generation(self) -> int | None:
        """Read this before the transaction's first statement: None while a commit is under way."""
        generation = self.db.generation
        return None if generation % 2 else generation

    def view(self, tx: Transaction, generation: int | None) -> Hashable | None:
        """What names the data `tx` sees: this process's `generation` where it promises that, else the engine's
        snapshot (PostgreSQL, whose other instances commit unseen); None when neither can promise anything."""
        return ("generation", generation) if generation is not None else tx.resources.snapshot()

    def unchanged(self, view: Hashable) -> bool:
        """Whether no commit of this process has begun since `view`'s generation was read (before the
        transaction's first statement): then the transaction's snapshot is that generation's data, and what it
        learnt may be kept, and what it was told held for it. An engine's snapshot view is always exact."""
        return not (isinstance(view, tuple) and view[0] == "generation") or view[1] == self.db.generation

    def get(self, view: Hashable | None, key: Any) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                # Least recently used goes first: the anchors and counts every page reads must outlive the
                # page ends that random startIndexes leave behind, one each.
                self._entries.move_to_end(key)
        if view is None or entry is None or entry[0] != view:
            return None
        return entry[1]

    def put(self, view: Hashable | None, key: Any, value: Any) -> None:
        if view is None or not self.unchanged(view):
            return
        with self._lock:
            self._entries[key] = (view, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.MAX:
                self._entries.popitem(last=False)

    def count(self, tx: Transaction, view: Hashable | None, search: SearchQuery) -> int:
        total: int | None = self.get(view, ("count", search))
        if total is None:
            total = tx.resources.count(search)
            self.put(view, ("count", search), total)
        return total


def index_page(tx: Transaction, hints: PageHints, generation: int | None, searches: Sequence[SearchQuery],
               start_index: int, count: int, budget: int, render: Render) -> Page:
    """The page at `start_index` (1-based) across `searches` in turn (a root search: Users, then Groups)."""
    view = hints.view(tx, generation)
    page = _index_page(tx, hints, view, searches, start_index, count, budget, render)
    if view is not None and not hints.unchanged(view):
        # A commit began after `generation` was read: this snapshot may be newer than what the hints knew.
        page = _index_page(tx, hints, None, searches, start_index, count, budget, render)
    return page


def _index_page(tx: Transaction, hints: PageHints, view: Hashable | None, searches: Sequence[SearchQuery],
                start_index: int, count: int, budget: int, render: Render) -> Page:
    totals = [hints.count(tx, view, s) for s in searches]
    offset = start_index - 1
    shape = tuple(searches)
    hint = hints.get(view, ("end", shape, offset)) if offset else None
    if hint is not None:
        # A page ended right before this one: continue after its last row, as a cursor would.
        index, rowid, value = hint
        page = _read(tx, searches, totals, index, Key(rowid, value), False, count, budget, render,
                     links=False)
    elif any(s.sort for s in searches):
        page = _offset_page(tx, searches, totals, offset, count, budget, render)
    else:
        page = _seek_page(tx, hints, view, searches, totals, offset, count, budget, render)
    last = page.last
    # An OFFSET page's keys carry no sort value (Resources.page), so only unsorted pages are continued from.
    if last is not None and last.rowid is not None and last.resource_type is not None \
            and not any(s.sort for s in searches):
        names = [s.resource_type.name for s in searches]
        hints.put(view, ("end", shape, offset + len(page.resources)),
                  (names.index(last.resource_type), last.rowid, last.value))
    return Page(sum(totals), page.resources)


def _seek_page(tx: Transaction, hints: PageHints, view: Hashable | None, searches: Sequence[SearchQuery],
               totals: list[int], offset: int, count: int, budget: int, render: Render) -> Page:
    """The page `offset` rows in, read by seeking after the row before it: that row is found from the nearest
    anchor below it (the key of every ANCHOR_EVERY-th row, kept per search and view), stepping over fewer than
    ANCHOR_EVERY keys, so that a page anywhere in 100,000 rows costs what the first does once the anchors are
    known (and finding them costs a walk over keys only, never more than the OFFSET scan it replaces)."""
    index = 0
    while index < len(searches) and offset >= totals[index]:
        offset -= totals[index]
        index += 1
    if index == len(searches):
        return Page(sum(totals), [])
    before = _key_before(tx, hints, view, searches[index], offset) if offset else None
    if offset and before is None:  # pragma: no cover - the count said the row is there, in this same snapshot
        return Page(sum(totals), [])
    return _read(tx, searches, totals, index, before, False, count, budget, render, links=False)


# A page at a startIndex nobody ended a page at steps over up to this many rows from its anchor. The rowid order
# walks the table itself, whose rows hold the documents: at 256 a random page of 100,000 users read 58 pages of
# the file a request (strace, pread64), at 64 it reads 35, for 4x the anchors (1,563 keys at 100,000 rows).
ANCHOR_EVERY = 64


def _key_before(tx: Transaction, hints: PageHints, view: Hashable | None, search: SearchQuery, offset: int
                ) -> Key | None:
    """The key of the row at 0-based position `offset - 1` of `search`."""
    anchors: tuple[Key, ...] = hints.get(view, ("anchors", search)) or ()  # [j]: row (j+1)*ANCHOR_EVERY-1
    wanted = offset // ANCHOR_EVERY  # the anchors that lie before the row
    if len(anchors) < wanted:
        anchors += tuple(tx.resources.anchors(search, anchors[-1] if anchors else None, ANCHOR_EVERY,
                                              wanted - len(anchors)))
        if len(anchors) < wanted:  # pragma: no cover - fewer rows than the count, in this same snapshot
            return None
        hints.put(view, ("anchors", search), anchors)
    rest = offset - wanted * ANCHOR_EVERY
    base = anchors[wanted - 1] if wanted else None
    return base if rest == 0 else tx.resources.skip(search, base, rest)


def _offset_page(tx: Transaction, searches: Sequence[SearchQuery], totals: list[int], offset: int,
                 count: int, budget: int, render: Render) -> Page:
    page: list[orjson.Fragment] = []
    used, room, last = 0, count, None
    for search, matched in zip(searches, totals, strict=True):
        if room <= 0:
            break
        if offset >= matched:
            offset -= matched
            continue
        found, cut = tx.resources.page(search, room, offset, budget - used)
        offset = 0
        kept, used = render(tx, search, [f.resource for f in found], page, used)
        if kept:
            last = _position(search, found[kept - 1].key)
        # A page cut short by the budget ends there: the next type must not fill in after a gap.
        room = 0 if cut or kept < len(found) else room - kept
    return Page(sum(totals), page, last=last)


def cursor_page(tx: Transaction, hints: PageHints, generation: int | None, searches: Sequence[SearchQuery],
                position: cursors.Position | None, count: int, budget: int, render: Render) -> Page:
    """The page a cursor names (None: the first), with the positions its nextCursor and previousCursor hold."""
    view = hints.view(tx, generation)
    totals = [hints.count(tx, view, s) for s in searches]
    if view is not None and not hints.unchanged(view):  # as in index_page
        totals = [tx.resources.count(s) for s in searches]
    names = [s.resource_type.name for s in searches]
    if position is None or position.rowid is None:
        return _read(tx, searches, totals, 0, None, False, count, budget, render)
    if position.resource_type not in names:  # pragma: no cover - the fingerprint covers the resource types
        raise errors.invalid_cursor("The cursor is invalid: it names a resource type this query does not list.")
    return _read(tx, searches, totals, names.index(position.resource_type),
                 Key(position.rowid, position.value), position.backwards, count, budget, render)


def _read(tx: Transaction, searches: Sequence[SearchQuery], totals: list[int], start: int,
          key: Key | None, backwards: bool, count: int, budget: int, render: Render, links: bool = True
          ) -> Page:
    """Up to `count` resources beyond `key` of searches[start] (from its start when None) in the reading
    direction, then on through the following searches (the preceding ones when `backwards`); with `links`,
    the positions of the pages on either side."""
    order = range(start, -1, -1) if backwards else range(start, len(searches))
    page: list[orjson.Fragment] = []
    used, room = 0, count
    near: cursors.Position | None = None  # the first row read (the nearest to `key`)
    far: cursors.Position | None = None   # the last row read
    more = False                          # whether rows follow the page in the reading direction
    for step, index in enumerate(order):
        search = searches[index]
        after = key if step == 0 else None
        if room <= 0:
            more = tx.resources.seek(search, after, 0, budget, backwards)[1] if after is not None \
                else totals[index] > 0
            if more:
                break
            continue
        found, rest = tx.resources.seek(search, after, room, budget - used, backwards)
        kept, used = render(tx, search, [f.resource for f in found], page, used)
        if kept:
            near = near or _position(search, found[0].key)
            far = _position(search, found[kept - 1].key)
        room -= kept
        if rest or kept < len(found):
            more = True
            break
    if backwards:
        page.reverse()
    total = sum(totals)
    if near is None or far is None:
        # Nothing was read (count=0, or nothing is left): a count=0 page still says where to go on from.
        here = cursors.Position(None, None) if key is None else _position(searches[start], key)
        return Page(total, page, here if more and not backwards else None)
    if not links:
        return Page(total, page, last=near if backwards else far)
    behind = _any_behind(tx, searches, totals, near, backwards, budget)
    if backwards:
        return Page(total, page, next_position=_flip(near, backwards=False) if behind else None,
                    previous_position=_flip(far, backwards=True) if more else None, last=near)
    return Page(total, page, next_position=far if more else None,
                previous_position=_flip(near, backwards=True) if behind else None, last=far)


def _any_behind(tx: Transaction, searches: Sequence[SearchQuery], totals: list[int],
                near: cursors.Position, backwards: bool, budget: int) -> bool:
    """Whether any row lies on the other side of `near` from the reading direction."""
    names = [s.resource_type.name for s in searches]
    assert near.rowid is not None and near.resource_type is not None
    index = names.index(near.resource_type)
    if tx.resources.seek(searches[index], Key(near.rowid, near.value), 0, budget, not backwards)[1]:
        return True
    others = range(index + 1, len(searches)) if backwards else range(index)
    return any(totals[i] > 0 for i in others)


def _position(search: SearchQuery, key: Key) -> cursors.Position:
    return cursors.Position(search.resource_type.name, key.rowid, key.value)


def _flip(position: cursors.Position, backwards: bool) -> cursors.Position:
    return cursors.Position(position.resource_type, position.rowid, position.value, backwards)
