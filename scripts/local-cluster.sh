#!/usr/bin/env bash
# Three Warren nodes on this machine, on loopback, for a quick look at a
# cluster: `make run-cluster` runs "start", `make stop-cluster` "stop".
#
#   node  name                AMQP   management  gossip (inter-node +1)  data
#   1     warren-1@localhost  5672   15672       25672 (25673)           data/node1
#   2     warren-2@localhost  5673   15673       25682 (25683)           data/node2
#   3     warren-3@localhost  5674   15674       25692 (25693)           data/node3
#
# Each runs in the background with its log in data/nodeN.log and its pid
# in data/nodeN.pid. Node 1 founds the cluster; 2 and 3 join it.
# WARREN_PORT_OFFSET (default 0) is added to every port, to run next to
# something that holds them; WARREN_CLUSTER_DATA replaces data/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${WARREN_BIN:-bin/warren}
DATA=${WARREN_CLUSTER_DATA:-data}
OFF=${WARREN_PORT_OFFSET:-0}

running() { [ -f "$DATA/node$1.pid" ] && kill -0 "$(cat "$DATA/node$1.pid")" 2>/dev/null; }

start() {
  mkdir -p "$DATA"
  local i
  for i in 1 2 3; do
    if running "$i"; then
      echo "node $i already running (pid $(cat "$DATA/node$i.pid"))"
      continue
    fi
    local join=()
    [ "$i" -gt 1 ] && join=(--cluster-join "127.0.0.1:$((25672 + OFF))")
    nohup "$BIN" --node-name "warren-$i@localhost" --data-dir "$DATA/node$i" \
      --amqp-listen "127.0.0.1:$((5671 + i + OFF))" --mgmt-listen "127.0.0.1:$((15671 + i + OFF))" \
      --cluster-listen "127.0.0.1:$((25662 + 10 * i + OFF))" "${join[@]}" \
      >>"$DATA/node$i.log" 2>&1 </dev/null &
    echo $! >"$DATA/node$i.pid"
  done
  # Wait (at most 30 s) for each node to accept clients.
  for i in 1 2 3; do
    local deadline=$((SECONDS + 30))
    until grep -q "warren started" "$DATA/node$i.log" 2>/dev/null; do
      if ! running "$i"; then
        echo "node $i exited; its log, $DATA/node$i.log, ends with:" >&2
        tail -n 20 "$DATA/node$i.log" >&2
        exit 1
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "node $i did not start within 30 s; see $DATA/node$i.log" >&2
        exit 1
      fi
      sleep 0.2
    done
  done
  cat <<MSG
Three Warren nodes are running, one cluster:
  AMQP        amqp://guest:guest@localhost:$((5672 + OFF))/  :$((5673 + OFF))  :$((5674 + OFF))
  management  http://localhost:$((15672 + OFF))/  :$((15673 + OFF))  :$((15674 + OFF))   (guest/guest)
  logs        $DATA/node1.log $DATA/node2.log $DATA/node3.log
  status      bin/warrenctl --url http://localhost:$((15672 + OFF)) cluster status
Stop them with: make stop-cluster
MSG
}

stop() {
  local i pids=()
  for i in 1 2 3; do
    if running "$i"; then
      kill -TERM "$(cat "$DATA/node$i.pid")"
      pids+=("$i")
    else
      rm -f "$DATA/node$i.pid"
    fi
  done
  for i in "${pids[@]}"; do
    local deadline=$((SECONDS + 20))
    while running "$i"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "node $i did not stop within 20 s; killing it" >&2
        kill -KILL "$(cat "$DATA/node$i.pid")" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    rm -f "$DATA/node$i.pid"
    echo "node $i stopped"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
