"""The log's public API, open to anyone for auditing: heads, entries and proofs as JSON under
/api/log, and the same tree as static tiles under /log (c2sp.org/tlog-tiles) for monitors."""

from __future__ import annotations

import gzip
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from concord.errors import N_, NotFound
from concord.http import Db
from concord.hubkey import load_or_create, public_key_base64
from concord.ledger import checkpoint, log, tiles
from concord.ledger.tables import LogEntry
from concord.validation import Index, OptionalQueryIndex, OptionalQuerySize, QueryIndex

api = APIRouter(prefix="/api/log", tags=["transparency log"])
tiled = APIRouter(prefix="/log", tags=["transparency log tiles"])
PAGE = 1000


class HeadPublic(BaseModel):
    size: int
    root: str
    timestamp: str
    signature: str
    public_key: str


class EntryPublic(BaseModel):
    index: int
    kind: str
    member: int | None
    time: str
    body: str
    leaf_hash: str

    @classmethod
    def of(cls, e: LogEntry) -> EntryPublic:
        return cls(
            index=e.index,
            kind=e.kind,
            member=e.member_id,
            time=e.created_at.isoformat().replace("+00:00", "Z"),
            body=e.body.decode("utf-8"),
            leaf_hash=e.leaf_hash.hex(),
        )


class InclusionPublic(BaseModel):
    index: int
    size: int
    leaf_hash: str
    audit_path: list[str]


class ConsistencyPublic(BaseModel):
    first: int
    second: int
    proof: list[str]


def _key(request: Request) -> tuple[Ed25519PrivateKey, str]:
    key = load_or_create(request.app.state.settings)
    return key, public_key_base64(key)


@api.get("/head")
def latest_head(request: Request, db: Db) -> HeadPublic:
    """The latest signed tree head, with the hub's Ed25519 public key (base64)."""
    key, public = _key(request)
    head = log.latest_head(db, key)
    return HeadPublic(**head.to_json(), public_key=public)


@api.get("/heads")
def signed_heads(
    request: Request,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: OptionalQuerySize = None,
) -> list[HeadPublic]:
    """Signed tree heads, newest first; page back with `before=<smallest size seen>`."""
    _key_obj, public = _key(request)
    return [HeadPublic(**h.to_json(), public_key=public) for h in log.heads(db, limit, before)]


@api.get("/entries")
def entries(
    db: Db,
    start: QueryIndex = 0,
    end: OptionalQueryIndex = None,
) -> list[EntryPublic]:
    """Entries with start ≤ index < end (at most 1000 per request).

    `start` equal to the log's size gives an empty list (a follower asking for what is new);
    a start beyond it, or an empty range, is a mistake and says so."""
    if end is not None and end <= start:
        raise log.BadEntryRange(start=start, end=end)
    if start > log.size(db):
        raise log.BadTreeSize(size=log.size(db), asked=start)
    stop = min(end if end is not None else start + PAGE, start + PAGE)
    return [EntryPublic.of(e) for e in log.entries(db, start, stop)]


@api.get("/entries/{index}")
def entry(index: Index, db: Db) -> EntryPublic:
    """One entry by index."""
    return EntryPublic.of(log.entry(db, index))


@api.get("/proof/inclusion")
def inclusion(db: Db, index: QueryIndex, size: QueryIndex) -> InclusionPublic:
    """RFC 9162 inclusion proof (audit path) of entry `index` in the tree of `size` entries."""
    leaf, proof = log.proven_leaf(db, index, size)  # one statement
    return InclusionPublic(
        index=index, size=size, leaf_hash=leaf.hex(), audit_path=[p.hex() for p in proof]
    )


class InclusionPagePublic(BaseModel):
    size: int
    start: int
    audit_paths: list[list[str]]


@api.get("/proof/inclusion-range")
def inclusion_range(
    db: Db,
    start: QueryIndex,
    end: QueryIndex,
    size: QueryIndex,
) -> InclusionPagePublic:
    """Inclusion proofs of entries start ≤ index < end (at most 1000) in the tree of `size`,
    for auditors who check every entry."""
    if not 0 <= start < end <= size or end - start > PAGE:
        raise log.BadTreeSize(size=log.size(db), asked=end)
    log.inclusion_proof(db, start, size)  # validates the size
    proofs = log.inclusion_proofs(db, list(range(start, end)), size)
    return InclusionPagePublic(
        size=size, start=start, audit_paths=[[p.hex() for p in path] for path in proofs]
    )


@api.get("/proof/consistency")
def consistency(db: Db, first: QueryIndex, second: QueryIndex) -> ConsistencyPublic:
    """RFC 9162 consistency proof between the trees of `first` and `second` entries."""
    proof = log.consistency_proof(db, first, second)
    return ConsistencyPublic(first=first, second=second, proof=[p.hex() for p in proof])


# --- tiles ----------------------------------------------------------------------------------

# A full tile or bundle never changes: caches and CDNs may keep it forever. A partial one is
# replaced by its full tile as the log grows (and a hub may stop serving it then), and the
# checkpoint moves with every append, so those are kept briefly (the spec: "a few seconds").
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
CHECKPOINT = "public, max-age=5"


class BadTilePath(NotFound):
    code = "log.bad_tile_path"
    message = N_("“{path}” is not a tile of this log (paths follow c2sp.org/tlog-tiles).")


@tiled.get("/checkpoint", response_class=Response)
def checkpoint_note(request: Request, db: Db) -> Response:
    """The latest signed tree head as a C2SP checkpoint (signed note, Ed25519)."""
    key, _public = _key(request)
    head = log.latest_head(db, key)
    origin = checkpoint.origin_of(request.app.state.settings.public_url)
    note = checkpoint.sign(checkpoint.Checkpoint(origin, head.size, head.root), key)
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": CHECKPOINT}
    )


@tiled.get("/tile/{path:path}", response_class=Response)
def tile(path: str, request: Request, db: Db) -> Response:
    """A tile of hashes (`tile/<L>/<N>[.p/<W>]`) or an entry bundle
    (`tile/entries/<N>[.p/<W>]`), N in the spec's x001/x234/067 form."""
    wanted = tiles.parse(path)
    if wanted is None:
        raise BadTilePath(path=path[:80])
    data = log.entry_bundle(db, wanted) if wanted.entries else log.tile_hashes(db, wanted)
    headers = {"Cache-Control": PARTIAL if wanted.partial else IMMUTABLE}
    if wanted.entries:
        # The spec asks for bundles compressed at the HTTP layer (JSON entries shrink ~5×);
        # tiles of hashes do not compress and go as they are.
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", ""):
            data = gzip.compress(data, 6)
            headers["Content-Encoding"] = "gzip"
    return Response(data, media_type="application/octet-stream", headers=headers)


router = APIRouter()
router.include_router(api)
router.include_router(tiled)
