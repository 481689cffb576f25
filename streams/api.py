"""The live query API on every worker (Faust web, aiohttp): routes a key to its owner, gathers alert pages.

Thin edge over streams.queries. A key-addressed request is answered by the worker that owns the key's
partition (found with Faust's external-topic routing, the same partitioner the producer used), forwarded
there once if needed. `/alerts` merges the local page of every worker in the group. Anything that cannot be
answered completely (a partition still recovering, a rebalance, a worker not answering) is a 503 with
Retry-After, never a partial answer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from pathlib import Path

import faust
import yaml
from aiohttp import ClientError, web
from yarl import URL

from streams import pickling
from streams.queries import (
    PROJECTION_BUCKETS,
    BadParameter,
    alert_view,
    check_id,
    entity_view,
    page,
    parse_alert_query,
    projection_view,
)
from streams.mapping import ENTITY_TYPES, load_mapping
from streams.queries import to_json
from streams.topics import links_topic
from streams.verify_core import bucket_of, source_values
from streams.verify_specs import entity_specs
from streams.verify_sums import LiveSums, entity_row, is_coarsening
from streams.values import epoch_ms
from trueup.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

OPENAPI_PATH = PROJECT_ROOT / "config" / "openapi.yaml"
ROUTED_HEADER = "X-Trueup-Routed"
RETRY_AFTER_S = 2
PEER_TIMEOUT_S = 10.0


class Unavailable(Exception):
    """The answer would be incomplete right now; ask again after Retry-After."""


def error(status: int, message: str, **extra) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def load_openapi(path: Path = OPENAPI_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def guard(token: str | None) -> Callable:
    """aiohttp middleware: the bearer token on every route when one is set; JSON errors without stack traces."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if token is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return error(401, "a valid bearer token is required")
        try:
            return await handler(request)
        except BadParameter as exc:
            return error(400, str(exc), parameter=exc.name)
        except Unavailable as exc:
            return error(503, str(exc))
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error(exc.status, exc.reason)
            raise
        except Exception:  # never a stack trace in a response
            log.exception("query failed: %s %s", request.method, request.path_qs)
            return error(500, "internal error")

    return middleware


class QueryApi:
    def __init__(self, app: faust.App, settings: Settings, buckets, alert_index, local_health: Callable[[], dict],
                 source_health: Callable, live_sums: LiveSums) -> None:
        self.app, self.buckets, self.alert_index, self.live_sums = app, buckets, alert_index, live_sums
        self.specs = entity_specs(settings, load_mapping(settings.mapping))
        self.local_health, self.source_health = local_health, source_health
        # Every bucket lives on the links topic's partition its placement key hashes to (an entity's bucket by
        # its id, as its event is keyed): the worker holding that partition answers for it.
        self.links_topic = app.topic(links_topic(settings.worker.app_id), key_serializer="raw", value_serializer="raw")
        self.token = settings.api.token.get_secret_value() if settings.api.token else None
        self.openapi = load_openapi()

    # ---- routing ---------------------------------------------------------------------------------

    def _ready(self) -> None:
        if not self.app.tables.recovery.completed.is_set():
            raise Unavailable("this worker's tables are still recovering")

    async def _at_owner(self, request: web.Request, topic, key: bytes, local: Callable[[], dict | None]):
        """Answer locally if this worker owns key's partition of topic, else forward to the owner once."""
        self._ready()
        try:
            owner = self.app.router.external_topic_key_store(topic, key)
        except (KeyError, TypeError) as exc:  # no assignment yet, or no metadata for the topic yet
            raise Unavailable("partition ownership is being reassigned") from exc
        if self._is_me(owner):
            # The producer's partitioner placed the key; the same one names the partition it lives on.
            if not self.app.assignor.is_active(self.app.producer.key_partition(topic.get_topic_name(), key)):
                raise Unavailable("partition ownership is being reassigned")
            return local()
        if request.headers.get(ROUTED_HEADER):
            raise Unavailable("partition ownership is being reassigned")  # two workers disagree: no ping-pong
        return await self._forward(request, owner)

    def _is_me(self, url: URL) -> bool:
        me = URL(str(self.app.conf.canonical_url))
        return (url.host, url.port) == (me.host, me.port)

    async def _forward(self, request: web.Request, owner: URL) -> web.Response:
        target = URL(str(owner)).with_path(request.path).with_query(request.query)
        headers = {ROUTED_HEADER: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            async with self.app.http_client.get(target, headers=headers, timeout=PEER_TIMEOUT_S) as resp:
                body = await resp.read()
                out = web.Response(body=body, status=resp.status, content_type=resp.content_type)
                if "Retry-After" in resp.headers:
                    out.headers["Retry-After"] = resp.headers["Retry-After"]
                return out
        except (ClientError, asyncio.TimeoutError) as exc:
            raise Unavailable(f"the worker owning this key ({owner}) did not answer") from exc

    # ---- views -----------------------------------------------------------------------------------

    async def entity(self, request: web.Request) -> web.Response:
        entity_type = request.match_info["entity_type"]
        entity_id = check_id("id", request.match_info["entity_id"])
        if entity_type not in ENTITY_TYPES:
            return error(404, f"unknown entity type {entity_type}; known: {', '.join(ENTITY_TYPES)}")

        def local():
            found = entity_view(entity_type, entity_id, self.buckets.get(f"{entity_type}|{entity_id}".encode()))
            return web.json_response(found) if found else error(404, f"no {entity_type} {entity_id}")

        return await self._at_owner(request, self.links_topic, entity_id.encode(), local)

    async def projection(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        pid = check_id("id", request.match_info["projection_id"])
        if name not in PROJECTION_BUCKETS:
            return error(404, f"unknown projection {name}; known: {', '.join(PROJECTION_BUCKETS)}")
        bucket = f"{PROJECTION_BUCKETS[name]}|{pid}"

        def local():
            found = projection_view(name, pid, self.buckets.get(bucket.encode()))
            return web.json_response(found) if found else error(404, f"no {name} projection {pid}")

        return await self._at_owner(request, self.links_topic, bucket.encode(), local)

    async def alerts(self, request: web.Request) -> web.Response:
        for name in request.query:
            if len(request.query.getall(name)) > 1:
                raise BadParameter(name, "given more than once")
        query = parse_alert_query(request.query)
        self._ready()
        records = [record for _, record in self.alert_index.items()]
        if not query.local:
            records += await self._gather(request)
        items, next_cursor = page(records, query)
        return web.json_response({"items": [alert_view(r) for r in items], "next_cursor": next_cursor})

    async def _gather(self, request: web.Request) -> list[dict]:
        """Every other worker's page for the same query (each already limited and after the cursor)."""
        query = {**request.query, "scope": "local"}

        async def one(host: URL) -> list[dict]:
            try:
                status, body = await self._peer_get(request, host, "/alerts", query)
            except (ClientError, asyncio.TimeoutError, ValueError) as exc:
                raise Unavailable(f"worker {host} did not answer") from exc
            if status != 200 or not isinstance(body, dict) or "items" not in body:
                raise Unavailable(f"worker {host} answered {status}")
            return body["items"]

        pages = await asyncio.gather(*(one(h) for h in self._peers()))
        return [r for p in pages for r in p]

    async def _peer_get(self, request: web.Request, host: URL, path: str, query: dict) -> tuple[int, object]:
        """(status, JSON body) of a GET to another worker, passing the caller's token along."""
        headers = {"Authorization": request.headers["Authorization"]} if "Authorization" in request.headers else {}
        async with self.app.http_client.get(host.with_path(path).with_query(query), headers=headers,
                                            timeout=PEER_TIMEOUT_S) as resp:
            return resp.status, (await resp.json() if resp.status == 200 else None)

    def _peers(self) -> list[URL]:
        hosts = {URL(h) for h in self.app.router.external_topics_metadata()}
        return sorted((h for h in hosts if not self._is_me(h)), key=str)

    # ---- verification: this worker's share of the state, by key bucket ---------------------------

    def _verify_params(self, request: web.Request) -> tuple[str, int, int, int | None]:
        entity_type = request.query.get("entity_type", "")
        if entity_type not in self.specs:
            raise BadParameter("entity_type", f"must be one of {', '.join(sorted(self.specs))}")
        buckets = _int_param(request, "bucket_count", 256)
        newer_than = _int_param(request, "newer_than_ms", 2**62)
        since = _int_param(request, "since_ms", None)
        if not 1 <= buckets <= 65536:
            raise BadParameter("bucket_count", "must be from 1 to 65536")
        return entity_type, buckets, newer_than, since

    def _wanted(self, request: web.Request) -> set[int] | None:
        text = request.query.get("buckets")
        if not text:
            return None
        try:
            return {int(b) for b in text.split(",") if b}
        except ValueError as exc:
            raise BadParameter("buckets", "a comma-separated list of bucket numbers") from exc

    def _local_rows(self, entity_type: str, since_ms: int | None = None):
        """(entity id, fields, row hash, source ms) of every entity of one type here; fields and hash None if deleted.

        since_ms keeps rows whose updated_at is at or after it, as the SQL side filters (trueup/verify_sql.py);
        it drops tombstones, whose updated_at is gone.
        """
        prefix = f"{entity_type}|".encode()
        for key, raw in self.buckets.table.items():
            if raw is None or not key.startswith(prefix):
                continue
            state = pickling.loads(raw)
            row = entity_row(key.decode(), state, {entity_type: self.specs[entity_type][2]})
            if row is None:
                continue
            entity_id, source_ms = row[1], row[3]
            fields = None if row[2] is None else state["members"][("self", entity_id)]["data"]["fields"]
            if since_ms is not None:
                changed = None if fields is None else fields.get("updated_at")
                if fields is None or (changed is not None and epoch_ms(changed) < since_ms):
                    continue
            yield entity_id, fields, row[2], source_ms


    async def verify_sums(self, request: web.Request) -> web.Response:
        """{bucket: [rows, sum of row hashes]} over this worker's state, and buckets holding rows newer than asked.

        Answered from the sums kept on every write when it can (no since filter, a power-of-two bucket count,
        sums built for the current assignment); otherwise by a scan of the local state.
        """
        entity_type, buckets, newer_than, since = self._verify_params(request)
        wanted = self._wanted(request)
        self._ready()
        partitions = self.buckets.active_partitions()
        if since is None and is_coarsening(buckets) and self.live_sums.ready(partitions):
            rows, sums, newer = self.live_sums.answer(entity_type, buckets, wanted, newer_than, partitions)
            return web.json_response({"rows": rows, "buckets": {str(b): v for b, v in sums.items()},
                                      "newer": newer, "from": "live"})
        sums: dict[int, list[int]] = {}
        newer_set: set[int] = set()
        rows = 0
        for entity_id, fields, row_hash, source_ms in self._local_rows(entity_type, since):
            b = bucket_of(entity_id, buckets)
            if wanted is not None and b not in wanted:
                continue
            if source_ms > newer_than:
                newer_set.add(b)
            if fields is None:
                continue
            entry = sums.setdefault(b, [0, 0])
            entry[0] += 1
            entry[1] += row_hash
            rows += 1
        return web.json_response({"rows": rows, "buckets": {str(b): v for b, v in sums.items()},
                                  "newer": sorted(newer_set), "from": "scan"})

    async def verify_rows(self, request: web.Request) -> web.Response:
        """The rows of some buckets, for row-level comparison: {id: [hash, source ms, source columns]}.

        A deleted entity comes as [null, delete's source ms, null], so a delete after the snapshot is no drift.
        """
        entity_type, buckets, _, since = self._verify_params(request)
        wanted = self._wanted(request) or set()
        self._ready()
        spec = self.specs[entity_type][2]
        out = {}
        for entity_id, fields, row_hash, source_ms in self._local_rows(entity_type, since):
            if bucket_of(entity_id, buckets) in wanted:
                values = None if fields is None else to_json(source_values(fields, spec))
                out[entity_id] = [row_hash, source_ms, values]
        return web.json_response({"rows": out})

    async def health_view(self, request: web.Request) -> web.Response:
        """This worker's state (scope=local), or with every source and every worker of the group (default)."""
        scope = request.query.get("scope", "all")
        if scope not in ("all", "local"):
            raise BadParameter("scope", "must be all or local")
        for name in request.query:
            if name != "scope":
                raise BadParameter(name, "unknown parameter; known: scope")
        me = self.local_health()
        if scope == "local":
            return web.json_response(me)

        async def one(host: URL) -> dict:
            try:
                status, body = await self._peer_get(request, host, "/health", {"scope": "local"})
            except (ClientError, asyncio.TimeoutError, ValueError) as exc:
                return {"url": str(host), "recovery": "unknown", "error": f"unreachable: {type(exc).__name__}"}
            return body if status == 200 else {"url": str(host), "recovery": "unknown", "error": f"answered {status}"}

        peers = await asyncio.gather(*(one(h) for h in self._peers()))
        workers = sorted([me, *peers], key=lambda w: (w.get("worker", 1 << 30), w.get("url", "")))
        return web.json_response({**me, "sources": await self.source_health(), "workers": workers})

    async def openapi_view(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi)


def register(app: faust.App, api: QueryApi, extra: dict[str, Callable] | None = None) -> None:
    """Add the routes to Faust's aiohttp application (guarded by the middleware set at app creation)."""
    def route(path: str, handler) -> None:
        async def view(self, request, **_):
            return await handler(request)

        view.__name__ = handler.__name__
        app.page(path)(view)

    route("/entities/{entity_type}/{entity_id}", api.entity)
    route("/projections/{name}/{projection_id}", api.projection)
    route("/alerts", api.alerts)
    route("/health", api.health_view)
    route("/openapi.json", api.openapi_view)
    route("/verify/sums", api.verify_sums)
    route("/verify/rows", api.verify_rows)
    for path, handler in (extra or {}).items():
        route(path, handler)


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadParameter(name, "must be an integer") from None
