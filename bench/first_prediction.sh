#!/usr/bin/env bash
# Time to first prediction from a fresh workspace, with the Azure-shaped online sample of
# tests/compat/files/online: `lapis server` on a new home -> `online-endpoint create` ->
# `online-deployment create --all-traffic` (waits until ready) -> `online-endpoint invoke`.
#   bash bench/first_prediction.sh          (after `make .venv/.stamp-dev`)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
L="$ROOT/.venv/bin/lapis"
H="$(mktemp -d)"
export LAPIS_HOME="$H"
trap 'pkill -f "server --home $H" || true; rm -rf "$H"' EXIT
cd "$ROOT/tests/compat/files"
now() { python3 -c 'import time; print(time.time())'; }
t0=$(now)
"$L" server --home "$H" --port 0 > "$H/server.log" 2>&1 &
until [ -s "$H/server.json" ]; do sleep 0.05; done
URL=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" "$H/server.json")
until curl -sf "$URL/healthz" > /dev/null; do sleep 0.05; done
t1=$(now)
"$L" online-endpoint create -f online/endpoint.yml -o none
"$L" online-deployment create -f online/folder.yml --all-traffic -o none
t2=$(now)
"$L" online-endpoint invoke -n compat-endpoint --request-file online/sample-request.json
t3=$(now)
python3 -c "
t0, t1, t2, t3 = $t0, $t1, $t2, $t3
print(f'server up {t1 - t0:.2f} s, endpoint + deployment {t2 - t1:.2f} s, '
      f'first prediction {t3 - t2:.2f} s; total {t3 - t0:.2f} s')"
