"""One connection to Milvus for the store: every call with Strong consistency and a time limit, and Milvus's
errors turned into :class:`qa.errors.IndexUnusable` messages that name the fix."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.errors import ConfigError, IndexUnusable
from qa.store import milvus_schema as ms
from qa.store.protocol import Manifest

#: Rows per insert/upsert call: gRPC refuses messages over 64 MB, and an articles row holds up to 64 KB of text.
WRITE_BATCH = 256
#: Ids per ``id in [...]`` query, and rows per page of a scan (Milvus caps limit + offset at 16,384).
READ_BATCH = 1000
#: Chunk ids found by recent searches whose identity is remembered (:meth:`Connection.chunks`).
IDENTITIES = 100_000
STATE_KEY = "manifest"
LEASE_KEY = "lease"


#: pymilvus pings every 10 s, even with no call in flight; Milvus's C++ core (gRPC-Go's default policy: at most
#: one ping per 5 minutes) answered with GOAWAY "too many pings", after which new clients of the process failed to
#: connect. Pinging only during calls, at most every 5 minutes, keeps within that policy.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}
_LITE: dict[str, tuple] = {}
_LITE_LOCK = threading.Lock()


def manifest_of(state: dict) -> Manifest:
    return Manifest(state["model"], int(state["dimension"]), int(state["chunk_tokens"]), int(state["overlap"]),
                    state.get("layout", ""), state.get("encoder", "torch"))


def check_uri(uri: str) -> str:
    """``uri`` if it names Milvus Lite (a file ending in .db) or a server (http(s)://, tcp://, unix:)."""
    if uri.startswith(("http://", "https://", "tcp://", "unix:")) or uri.endswith(".db"):
        return uri
    raise ConfigError(f"QA_MILVUS_URI={uri!r} is neither a Milvus Lite file ending in .db (e.g. index/milvus.db) "
                      "nor a server address (e.g. http://localhost:19530); set it to one of those")


class Connection:
    """A MilvusClient for the collections of one ``prefix``."""

    def __init__(self, uri: str, token: str = "", prefix: str = "qa", timeout: float = 30.0):
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise IndexUnusable("QA_BACKEND=milvus needs the Milvus client: pip install -e '.[milvus]' "
                                "(or set QA_BACKEND=local)") from None
        self.uri = check_uri(uri)
        if not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
            raise ConfigError(f"QA_MILVUS_PREFIX={prefix!r} must be letters, digits and _, starting with a "
                              "letter (Milvus's rule for collection names), e.g. qa")
        self.prefix = prefix
        self.timeout = timeout
        self.where = uri.split("@")[-1] if "://" in uri else str(Path(uri).absolute())
        if uri.endswith(".db"):
            Path(uri).absolute().parent.mkdir(parents=True, exist_ok=True)
        self._loaded: set[str] = set()
        self._identities: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        # Milvus Lite in this process is one engine behind a Python API; its thread safety is not documented.
        self._lock: threading.RLock | None = None
        self.lite = uri.endswith(".db")

        def connect():
            # dedicated: pymilvus shares one channel per address and token, set up with the options of the
            # first client made; ours must not take another's (pinging every 10 s, see GRPC_OPTIONS).
            return MilvusClient(uri=uri, token=token, timeout=timeout, grpc_options=GRPC_OPTIONS,
                                dedicated=not self.lite)

        if self.lite:
            # One client per Lite file and process, kept open: a second MilvusClient on the same file (the web
            # app's sync beside its retriever, `qa migrate`) failed to connect to Lite's in-process server
            # ("too many pings"). The engine is then shared, and so is its lock.
            key = str(Path(uri).absolute())
            with _LITE_LOCK:
                if key not in _LITE:
                    _LITE[key] = (self._call(connect, "connect"), threading.RLock())
                self.client, self._lock = _LITE[key]
        else:
            self.client = self._call(connect, "connect")
        self.meta = f"{prefix}_meta"

    def close(self) -> None:
        if not self.lite:  # a Lite file's client stays for the process (see __init__)
            self._call(self.client.close, "close")

    def name(self, state: dict, kind: str) -> str:
        return f"{self.prefix}_{state['space']}_{kind}"

    def _call(self, fn, what: str, collection: str | None = None):
        try:
            if self._lock is None:
                return fn()
            with self._lock:
                return fn()
        except IndexUnusable:
            raise
        except Exception as exc:  # pymilvus raises MilvusException and grpc's RpcError, with the server's words
            text = " ".join(str(exc).split())[:300]
            if collection and "not found" in text.lower():
                raise IndexUnusable(f"the Milvus collection {collection} at {self.where} is gone (a rebuild "
                                    "elsewhere replaced it); ask again to read the new one") from None
            raise IndexUnusable(f"Milvus at {self.where} failed to {what} ({text}); check that it runs and that "
                                "QA_MILVUS_URI and QA_MILVUS_TOKEN point to it") from None

    def _ready(self, collection: str) -> None:
        if collection not in self._loaded:
            self._call(lambda: self.client.load_collection(collection, timeout=self.timeout), "load", collection)
            self._loaded.add(collection)

    # -- reads ---------------------------------------------------------------------------------------------
    def search(self, collection: str, data: list, field: str, where: str, k: int, params: dict) -> list[dict]:
        """Hits of one query, best first, each row once (see :func:`qa.store.milvus_schema.identity`)."""
        self._ready(collection)
        found = self._call(lambda: self.client.search(
            collection, data, anns_field=field, filter=where, limit=min(k, 16_384), search_params=params,
            output_fields=["akey", "gen", "position"], consistency_level="Strong", timeout=self.timeout),
            "search", collection)
        seen, out = set(), []
        for hit in found[0] if found else []:
            identity = ms.identity("chunks", hit["entity"])
            if identity not in seen:
                seen.add(identity)
                out.append(hit)
                self._identities[int(hit["id"])] = identity
        while len(self._identities) > IDENTITIES:
            self._identities.popitem(last=False)
        return out

    def chunks(self, collection: str, ids: Sequence[int], fields: list[str]) -> dict[int, dict]:
        """Chunk rows by id. A row retired since it was found is read through its copy (same identity, new id):
        chunk ids a reader holds stay good, as the local backend's do."""
        rows = {r["id"]: r for r in self.by_ids(collection, ids, [*fields, "id"])}
        for i in {int(i) for i in ids} - rows.keys():
            identity = self._identities.get(i)
            if identity is not None:
                akey, gen, position = identity
                found = self.query(collection, f"akey == {akey} and gen == {gen} and position == {position}",
                                   fields, 1)
                if found:
                    rows[i] = found[0]
        return rows

    def query(self, collection: str, where: str, fields: list[str], limit: int | None = 16_384) -> list[dict]:
        self._ready(collection)
        return list(self._call(lambda: self.client.query(
            collection, filter=where, output_fields=fields, limit=limit, consistency_level="Strong",
            timeout=self.timeout), "query", collection))

    def scan(self, collection: str, where: str, fields: list[str]) -> Iterator[dict]:
        """Every row ``where`` keeps, a page at a time (ordered by primary key)."""
        last = None
        while True:
            page_where = f"({where}) and id > {last}" if last is not None else where
            rows = self.query(collection, page_where, [*fields, "id"], READ_BATCH)
            if not rows:
                return
            rows.sort(key=lambda r: r["id"])
            yield from rows
            if len(rows) < READ_BATCH:
                return
            last = rows[-1]["id"]

    def by_ids(self, collection: str, ids: Sequence[int], fields: list[str]) -> list[dict]:
        unique = sorted({int(i) for i in ids})
        out: list[dict] = []
        for i in range(0, len(unique), READ_BATCH):
            batch = unique[i:i + READ_BATCH]
            out += self.query(collection, ms.keys_in("id", batch), fields, len(batch))
        return out

    def count(self, collection: str, where: str) -> int:
        rows = self.query(collection, where, ["count(*)"], limit=None)
        return int(rows[0]["count(*)"]) if rows else 0

    # -- writes --------------------------------------------------------------------------------------------
    def create(self, collection: str, fields: tuple[ms.Field, ...], dimension: int, index_type: str) -> None:
        def make():
            if self.client.has_collection(collection, timeout=self.timeout):
                return
            params = self.client.prepare_index_params()
            params.add_index("vector", index_type=index_type if dimension != ms.META_DIM else "FLAT",
                             metric_type="IP", params=_index_params(index_type))
            if any(f.analyzed for f in fields):
                # k1 1.5, b 0.75: bm25s's (and Lucene's) values, which the local backend uses; Milvus's own are 1.2.
                params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                                 params={"bm25_k1": 1.5, "bm25_b": 0.75})
            self.client.create_collection(collection, schema=ms.schema(self.client, fields, dimension),
                                          consistency_level="Strong", timeout=self.timeout)
            # sync=False: pymilvus would otherwise poll each index's state every 0.5 s, and sleep before the first
            # poll: 2.5 s per new index of five collections, all of it sleeping, though an empty collection's index
            # is built at once (the load below waits for the server where it must).
            self.client.create_index(collection, params, timeout=self.timeout, sync=False)
            self.client.load_collection(collection, timeout=self.timeout)
        self._call(make, "create a collection", collection)
        self._ready(collection)

    def write(self, collection: str, rows: list[dict], upsert: bool = False) -> None:
        self._ready(collection)
        op = self.client.upsert if upsert else self.client.insert
        for i in range(0, len(rows), WRITE_BATCH):
            batch = rows[i:i + WRITE_BATCH]
            self._call(lambda b=batch: op(collection, b, timeout=self.timeout), "write", collection)

    def delete(self, collection: str, where: str) -> None:
        self._ready(collection)
        self._call(lambda: self.client.delete(collection, filter=where, timeout=self.timeout), "delete", collection)

    def collections(self) -> list[str]:
        return [c for c in self._call(lambda: self.client.list_collections(timeout=self.timeout), "list")
                if c.startswith(self.prefix + "_")]

    def drop(self, collection: str) -> None:
        self._call(lambda: self.client.drop_collection(collection, timeout=self.timeout), "drop", collection)
        self._loaded.discard(collection)

    # -- the meta collection -------------------------------------------------------------------------------
    def _meta_exists(self) -> bool:
        if self.meta in self._loaded:
            return True
        return bool(self._call(lambda: self.client.has_collection(self.meta, timeout=self.timeout), "look up"))

    def ensure_meta(self) -> None:
        self.create(self.meta, ms.META_FIELDS, ms.META_DIM, "FLAT")

    def _meta_get(self, key: str) -> dict | None:
        if not self._meta_exists():
            return None
        rows = self.query(self.meta, f'key == "{key}"', ["value"], 1)
        return json.loads(rows[0]["value"]) if rows else None

    def _meta_put(self, key: str, kind: str, value) -> None:
        self.ensure_meta()
        self.write(self.meta, [_meta_row(key, kind, value)], upsert=True)

    def read_state(self) -> dict | None:
        """The manifest row of the last commit (None before the first one)."""
        return self._meta_get(STATE_KEY)

    def write_state(self, state: dict) -> None:
        """The switch: one row, so a commit becomes visible to every reader at once."""
        self._meta_put(STATE_KEY, "state", state)

    def meta_items(self, kind: str) -> dict[str, Any]:
        """The items stored under ``kind`` by :meth:`replace_meta`."""
        if not self._meta_exists():
            return {}
        out: dict[str, object] = {}
        for row in self.query(self.meta, f'kind == "{kind}"', ["value"]):
            out.update(json.loads(row["value"]))
        return out

    def replace_meta(self, kind: str, items: dict[str, object]) -> None:
        """Store ``items`` under ``kind``, packed into rows of about 40 KB (16,384 rows, some 8 million corpus
        files, at most): keys are then never written into an expression."""
        self.ensure_meta()
        rows, pack, size = [], {}, 0
        for k, v in items.items():
            pack[k] = v
            size += len(k) * 4 + 40
            if size > 40_000:
                rows.append(pack)
                pack, size = {}, 0
        rows.append(pack)
        self.delete(self.meta, f'kind == "{kind}"')
        self.write(self.meta, [_meta_row(f"{kind}:{n}", kind, r) for n, r in enumerate(rows) if r])

    def take_lease(self, token: str, seconds: float) -> str | None:
        """Take the writer lease; the holder's description when another writer holds it."""
        now = time.time()
        held = self._meta_get(LEASE_KEY)
        if held and held["token"] != token and held["expires"] > now:
            return held["token"].rsplit(":", 1)[0].replace(":", " pid ")
        self._meta_put(LEASE_KEY, "lease", {"token": token, "expires": now + seconds})
        held = self._meta_get(LEASE_KEY)
        return None if held and held["token"] == token else "another writer"

    def renew_lease(self, token: str, seconds: float) -> None:
        self._meta_put(LEASE_KEY, "lease", {"token": token, "expires": time.time() + seconds})

    def drop_lease(self, token: str) -> None:
        held = self._meta_get(LEASE_KEY)
        if held and held["token"] == token:
            self.delete(self.meta, f'key == "{LEASE_KEY}"')


def _meta_row(key: str, kind: str, value) -> dict:
    return {"key": key, "kind": kind, "value": json.dumps(value, ensure_ascii=False), "vector": [0.0] * ms.META_DIM}


def _index_params(index_type: str) -> dict:
    """Build parameters for the vector index (HNSW and IVF_FLAT; FLAT and AUTOINDEX take none)."""
    return {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}.get(index_type, {})
