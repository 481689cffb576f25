#!/bin/sh
# Registers every Debezium connector config in $CONNECTOR_DIR (*.json, bare
# config maps; the file name is the connector name) with Kafka Connect, then
# waits until each connector and all its tasks are RUNNING.
#
# Idempotent: PUT /connectors/<name>/config creates the connector or replaces
# its config, so re-running (every `docker compose up`) is harmless.
# Exits non-zero when a config is rejected, a connector or task FAILED, or
# nothing is RUNNING within $STATUS_TIMEOUT_S.
set -eu

CONNECT_URL=${CONNECT_URL:-http://connect:8083}
CONNECTOR_DIR=${CONNECTOR_DIR:-/debezium}
REGISTER_ATTEMPTS=${REGISTER_ATTEMPTS:-10}
RETRY_DELAY_S=${RETRY_DELAY_S:-3}
STATUS_TIMEOUT_S=${STATUS_TIMEOUT_S:-180}

names=""
for file in "$CONNECTOR_DIR"/*.json; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .json)
    attempt=1
    # Connect answers 409 while its workers rebalance: retry a few times.
    until curl -fsS -X PUT -H 'Content-Type: application/json' \
        --data "@$file" "$CONNECT_URL/connectors/$name/config" > /dev/null; do
        if [ "$attempt" -ge "$REGISTER_ATTEMPTS" ]; then
            echo "register-connectors: $name rejected after $attempt attempts; Connect says:" >&2
            curl -sS -X PUT -H 'Content-Type: application/json' \
                --data "@$file" "$CONNECT_URL/connectors/$name/config" >&2 || true
            echo >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep "$RETRY_DELAY_S"
    done
    echo "register-connectors: registered $name from $file"
    names="$names $name"
done

if [ -z "$names" ]; then
    echo "register-connectors: no *.json connector config in $CONNECTOR_DIR" >&2
    exit 1
fi

# Connector and task states from GET /connectors/<name>/status, one per line.
states() {
    curl -fsS "$CONNECT_URL/connectors/$1/status" 2> /dev/null \
        | grep -o '"state" *: *"[A-Z_]*"' \
        | sed 's/.*"\([A-Z_]*\)"$/\1/' || true
}

deadline=$(($(date +%s) + STATUS_TIMEOUT_S))
for name in $names; do
    while :; do
        current=$(states "$name")
        total=$(printf '%s\n' "$current" | grep -c . || true)
        running=$(printf '%s\n' "$current" | grep -c '^RUNNING$' || true)
        if printf '%s\n' "$current" | grep -q '^FAILED$'; then
            echo "register-connectors: $name FAILED:" >&2
            curl -sS "$CONNECT_URL/connectors/$name/status" >&2 || true
            echo >&2
            exit 1
        fi
        # The connector itself plus at least one task, all RUNNING.
        if [ "$total" -ge 2 ] && [ "$running" -eq "$total" ]; then
            echo "register-connectors: $name RUNNING"
            break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "register-connectors: $name not RUNNING after ${STATUS_TIMEOUT_S}s (states: $(echo $current))" >&2
            exit 1
        fi
        sleep 2
    done
done
