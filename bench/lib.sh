# Shared by bench/*.sh (sourced from the repository root, not run). The bench sets first:
#   BIND      host:port the service listens on
#   EMULATOR  the test server it needs (garage, redis: tests/emulators/EMULATOR.sh), or empty
# Sourcing sets URL and a random TOKEN, makes TMP and, on exit, stops the service (PID) and the
# test server and removes TMP.

URL=http://$BIND
TOKEN=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')

TMP=$(mktemp -d)
TMP=$(cd "$TMP" && pwd -P)
PID=
stop() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=; }
trap 'stop || true; [[ -z $EMULATOR ]] || tests/emulators/$EMULATOR.sh stop "$TMP/$EMULATOR" || true; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_mb() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; } # VmRSS|VmHWM

# The adapters, the service and (if missing) the test server.
build() {
    adapters/build.sh
    cargo build --release -p stowage
    [[ -z $EMULATOR ]] || "tests/emulators/$EMULATOR.sh" install
}

# Starts the test server under TMP/EMULATOR and exports its settings (TMP/EMULATOR/env).
start_emulator() {
    "tests/emulators/$EMULATOR.sh" start "$TMP/$EMULATOR" >/dev/null
    # shellcheck disable=SC1090
    source "$TMP/$EMULATOR/env"
}

start() { # [serve flags]...; sets PID, and START_MS = ms from spawn to the first /health 200
    local t0
    mkdir -p "$TMP/root" "$TMP/data"
    t0=$(now_ms)
    STOWAGE_TOKEN=$TOKEN target/release/stowage serve --bind "$BIND" --data-dir "$TMP/data" \
        --adapters-dir target/adapters --document-root "$TMP/root" "$@" >>"$TMP/server.log" 2>&1 &
    PID=$!
    until curl -sf -o /dev/null "$URL/health"; do
        kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; echo "stowage died" >&2; exit 1; }
        sleep 0.005
    done
    START_MS=$(($(now_ms) - t0))
}

api() { # METHOD PATH [JSON] -> prints the body; on HTTP >= 400 shows it and fails
    local out code
    out=$(curl -sS -w '\n%{http_code}' -X "$1" -H "Authorization: Token $TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$URL$2") || return
    code=${out##*$'\n'} out=${out%$'\n'*}
    if ((code >= 400)); then echo "$1 $2 -> HTTP $code: $out" >&2; return 1; fi
    printf '%s' "$out"
}
get() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
create() { # PATH JSON -> prints the new object's id
    local r
    r=$(api POST "$1" "$2") || return
    get id <<<"$r"
}

# The bench's project (one text field).
create_project() {
    create /api/projects/ '{"title": "bench", "label_config": "<View><Text name=\"text\" value=\"$text\"/></View>"}'
}

sync_ms() { # TYPE STORAGE_ID EXPECTED_COUNT; sets SYNC_MS = ms until the sync has finished
    local t0 t1 r status
    t0=$(now_ms)
    r=$(api POST "/api/storages/$1/$2/sync")
    t1=$(now_ms) # before parsing: python start-up is not the service's time
    # LS runs syncs inline without a queue; if this one is queued, poll until it settles.
    while status=$(get status <<<"$r"); [[ $status == queued || $status == in_progress ]]; do
        sleep 0.02
        r=$(api GET "/api/storages/$1/$2")
        t1=$(now_ms)
    done
    SYNC_MS=$((t1 - t0))
    local count
    count=$(get last_sync_count <<<"$r")
    if [[ $status != completed || $count != "$3" ]]; then
        echo "sync of storage $2: status=$status last_sync_count=$count (want completed/$3)" >&2
        echo "$r" >&2
        exit 1
    fi
}

annotate() { # PROJECT COUNT: one annotation on each of the project's first COUNT tasks (8 clients)
    python3 - "$URL" "$TOKEN" "$1" "$2" <<'EOF'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, token, project, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Token " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
ids = [t["id"] for t in call("GET", f"/api/tasks/?project={project}&page_size={n}")["tasks"]][:n]
assert len(ids) == n, f"{len(ids)} tasks, want {n}"
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda i: call("POST", f"/api/tasks/{i}/annotations/", {"result": [{"v": 1}]}), ids))
EOF
}

export_ms() { # TYPE JSON EXPECTED_COUNT; sets SYNC_MS = ms from creating an export storage to the
    # end of the first sync that creating it queues
    local t0 r status id
    t0=$(now_ms)
    id=$(create "/api/storages/export/$1/" "$2")
    while r=$(api GET "/api/storages/export/$1/$id"); status=$(get status <<<"$r"); [[ $status == queued || $status == in_progress ]]; do
        sleep 0.02
    done
    SYNC_MS=$(($(now_ms) - t0))
    [[ $status == completed && $(get last_sync_count <<<"$r") == "$3" ]] ||
        { echo "export storage $id: $r (want completed/$3)" >&2; exit 1; }
}

# Files in folders of 1,000 (d0000/f000000.txt ...), written by one Python process.
make_files() { # DIR COUNT
    python3 - "$1" "$2" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "w") as f:
        f.write("x")
EOF
}

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }'; } # COUNT MS -> per s

table() { # LABEL_WIDTH TITLE [LABEL VALUE]...: the figures, under a "figure" heading
    local width=$1 title=$2
    shift 2
    printf "\n%-${width}s %12s\n" "$title" "figure"
    printf "%-${width}s %12s\n" "$@"
}

# ApacheBench (Debian apache2-utils) on the resolver link of the project's first task
# (GET /tasks/ID/resolve/?fileuri=..., redirects not followed). One request first: a 303 to a
# presigned URL whose bytes match BODY_REGEX, else no figure. Then REQUESTS requests over CLIENTS
# keep-alive-less connections, all of them answered with the redirect (ab counts them "Non-2xx").
presign_ab() { # PROJECT BODY_REGEX REQUESTS CLIENTS; sets AB_RATE (resolves/s, or "(no ab)")
    local link loc body out
    link=$(api GET "/api/tasks/?project=$1&page_size=1" | python3 -c \
        "import json, sys; print(json.load(sys.stdin)['tasks'][0]['data'].get('text'))")
    [[ $link == /tasks/* ]] || { echo "first task's text: $link (want a /tasks/ resolver link)" >&2; exit 1; }
    loc=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H "Authorization: Token $TOKEN" "$URL$link")
    [[ ${loc%% *} == 303 ]] || { echo "resolve $link -> $loc (want 303)" >&2; exit 1; }
    body=$(curl -sS "${loc#* }")
    [[ $body =~ $2 ]] || { echo "presigned ${loc#* } -> '$body'" >&2; exit 1; }
    AB_RATE="(no ab)"
    command -v ab >/dev/null || return 0
    out=$(ab -q -n "$3" -c "$4" -H "Authorization: Token $TOKEN" "$URL$link" 2>&1) || { echo "$out" >&2; exit 1; }
    grep -Eq "^Complete requests: +$3\$" <<<"$out" && grep -Eq "^Non-2xx responses: +$3\$" <<<"$out" ||
        { echo "$out" >&2; echo "ab: not all $3 requests answered with the redirect" >&2; exit 1; }
    AB_RATE=$(awk '/^Requests per second/ {printf "%.0f", $4}' <<<"$out")
}
