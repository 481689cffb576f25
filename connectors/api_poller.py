"""`trueup connect poll-api`: a SaaS events feed read with cursor pagination, emitted as Debezium envelopes.

The feed is paged like Stripe's `/v1/events` (`limit`, `starting_after`, `has_more`), oldest first. Each event
carries an object (`data.object`) whose fields are the mapped table's columns; `<type>.deleted` events become
deletes. `429` waits for `Retry-After`; 5xx, timeouts and broken connections back off exponentially with
jitter. A duplicated or reordered page changes nothing downstream: an object's position is its own change time,
so a repeat is a duplicate and an older version is stale. The cursor (last event id) lives in Kafka and moves
only after the page's records are acknowledged.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from connectors.poll_config import ApiPollConfig
from connectors.poll_envelopes import encode, envelope, record_key
from connectors.poller_base import PollerBase, backoff_s
from connectors.status import StatusWriter
from streams.mapping import Mapping

log = logging.getLogger(__name__)
FEED = "events"


class RetryLater(Exception):
    def __init__(self, message: str, after_s: float | None = None) -> None:
        super().__init__(message)
        self.after_s = after_s


def parse_time(value) -> datetime:
    """An object's change time: ISO 8601 text or epoch seconds (Stripe's `created`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"not a time: {value!r}")


def event_envelope(event: dict, config: ApiPollConfig, mapping: Mapping, now_ms: int) -> tuple[str, bytes, dict]:
    """(table, Kafka key, envelope) for one API event; raises ValueError for an event it cannot map."""
    kind, _, action = str(event.get("type", "")).rpartition(".")
    table = config.objects.get(kind)
    if table is None:
        raise ValueError(f"event {event.get('id')}: no table mapped for object type {kind!r}")
    spec = mapping.sources[config.source].tables[table]
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise ValueError(f"event {event.get('id')}: no data.object")
    row = {column: obj.get(column) for column in {*spec.columns, *obj}}
    changed = parse_time(obj.get("updated_at") or event.get("created"))
    deleted = action == "deleted"
    op = "d" if deleted else ("c" if action == "created" else "u")
    value = envelope(config.source, "api", mapping.sources[config.source].schema_, table, op,
                     row if deleted else None, None if deleted else row, changed, 1 if deleted else 0, now_ms)
    value["source"]["event_id"] = event.get("id")
    return table, record_key(spec.key, row), value


def page_cursor(events: list[dict]) -> str | None:
    """The id to continue after: the page's last event, or its newest by (`created`, id) if the page came reordered."""
    created = [e.get("created") for e in events]
    if all(isinstance(c, (int, float)) for c in created) and any(a > b for a, b in zip(created, created[1:])):
        return max(events, key=lambda e: (e["created"], str(e.get("id"))))["id"]
    return events[-1].get("id")


class ApiPoller(PollerBase):
    def __init__(self, config: ApiPollConfig, mapping: Mapping, token: str | None, bootstrap: str,
                 cursor_topic: str, work_dir: Path, linger_ms: int = 5) -> None:
        super().__init__("poll-api", config.source, config.objects.values(), mapping, bootstrap, cursor_topic,
                         work_dir, linger_ms)
        self.config, self.mapping, self.token = config, mapping, token
        self.cursor: str | None = None
        self._last_request = 0.0

    def _get(self, params: dict) -> dict:
        wait = 1.0 / self.config.max_requests_per_s - (time.monotonic() - self._last_request)
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()
        url = self.config.base_url.rstrip("/") + self.config.events_path + "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                after = exc.headers.get("Retry-After")
                raise RetryLater("429 rate limited", float(after) if after and after.isdigit() else None) from None
            if exc.code >= 500:
                raise RetryLater(f"{exc.code} from the API") from None
            raise  # a 4xx other than 429 is a configuration problem: report it, keep trying slowly
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError, ValueError) as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise RetryLater("malformed page: no data list")
        return body

    def fetch_page(self) -> bool:
        """One page after the cursor; returns has_more."""
        params = {"limit": self.config.page_size}
        if self.cursor:
            params["starting_after"] = self.cursor
        page = self._get(params)
        events = page["data"]
        now_ms = int(time.time() * 1000)
        for event in events:
            try:
                table, key, value = event_envelope(event, self.config, self.mapping, now_ms)
            except ValueError as exc:
                # Not ours to judge: forward it raw so the normalizer dead-letters it with the reason.
                log.warning("unmappable event: %s", exc)
                table, key, value = next(iter(self.config.objects.values())), None, {"unmappable_event": event}
            self.producer.produce(self.spec.topic(table), key, encode(value))
        if events:
            last = page_cursor(events)
            self.cursors.commit(FEED, {"after": last})
            self.cursor = last
            self.status.cursors[FEED] = last
        self.status.records += len(events)
        self.status.rows_per_poll = len(events)
        return bool(page.get("has_more")) and bool(events)

    def run(self) -> int:
        writer = StatusWriter(self.status, self.status_path)
        writer.start()
        attempt = 0
        try:
            self.cursor = self.cursors.load().get(FEED, {}).get("after")
            self.status.cursors[FEED] = self.cursor
            while not self.stop.is_set():
                started = datetime.now(timezone.utc)
                try:
                    while self.fetch_page() and not self.stop.is_set():
                        pass
                    if self.stop.is_set():
                        break  # the feed may not be read to its end: a heartbeat now would cover what was not
                    self.emit_heartbeat("api", started)
                    self.status.phase, self.status.error, attempt = "streaming", None, 0
                    self.status.last_poll_at = time.time()
                    self.status.last_event_time_ms = int(started.timestamp() * 1000)
                    self.stop.wait(self.config.interval_s)
                except (RetryLater, urllib.error.HTTPError, TimeoutError) as exc:
                    attempt += 1
                    self.failed(str(exc))
                    after = getattr(exc, "after_s", None)
                    delay = after if after is not None else backoff_s(attempt, self.config.max_backoff_s, self.rng)
                    log.warning("poll failed (attempt %d): %s; retrying in %.2fs", attempt, exc, delay)
                    self.stop.wait(delay)
            self.status.phase = "stopped"
            return 0
        finally:
            writer.close()
