#!/bin/bash
# Makes schema2-seed.db: a store written by the last vpcflow with store
# schema 2 (main at 3b73a50, before schema 3), holding the seed scenario as
# the README registers it, for TestPackageUpgradeBackupRestore: the
# package's vpcflow must upgrade it in place (keeping a copy as
# vpcflow.db.schema2.bak) and serve the same fabric.
#
#   packaging/testdata/make-schema2-store.sh   (from the checkout; no root)
set -euo pipefail
PREV=${PREV:-3b73a50}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/packaging/testdata/schema2-seed.db
W=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$W"' EXIT
git -C "$REPO" archive "$PREV" | tar -x -C "$W"
mkdir "$W/data"
(cd "$W" && /usr/local/go/bin/go build -o "$W/vpcflow" ./cmd/vpcflow)
export VPCFLOW_CONFIG=/dev/null VPCFLOW_API=http://127.0.0.1:18089
"$W/vpcflow" init --data-dir "$W/data"
"$W/vpcflow" serve --data-dir "$W/data" --openflow 127.0.0.1:0 --listen 127.0.0.1:18089 >"$W/log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18089/healthz >/dev/null && break; sleep 0.1; done
v() { "$W/vpcflow" "$@" >/dev/null; }
v vpc create vpc-seed
v vswitch create --vpc vpc-seed vsw-a --cidr 10.10.10.0/24 --gateway 10.10.10.1
v host add --vpc vpc-seed test1 --vswitch vsw-a --ip 10.10.10.11 --mac 52:58:00:98:c0:81 --bridge br-test --interface vnet1
v subnet add --vpc vpc-seed 172.18.1.0/24 --host test1
v host add --vpc vpc-seed test2 --vswitch vsw-a --ip 10.10.10.12 --mac 52:58:00:98:c0:92 --bridge br-test --interface vnet3
v subnet add --vpc vpc-seed 172.18.3.0/24 --host test2
kill "$pid"; wait "$pid" || true; pid=
cp "$W/data/vpcflow.db" "$OUT"
echo "wrote $OUT (schema 2, by vpcflow $PREV)"
