#!/usr/bin/env bash
# Demo: build stowage, fill a document root with real sample images (from the scikit-image
# wheel, which is downloaded but never installed) and JSON tasks, start the service on
# 127.0.0.1:8080, create a project with a blob-mode and a JSON-mode local storage, sync both,
# and keep the service in the foreground (Ctrl-C stops it).
#
# Every run starts from an empty service state (the demo data dir is wiped) so ids are the
# same each time; the downloaded wheel and the extracted images are kept in the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
# Storage paths must be absolute and under the document root: use the physical path.
CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd -P)
DEMO=$CACHE/demo
BIND=${STOWAGE_BIND:-127.0.0.1:8080}
URL=http://$BIND
# A fixed, printed token and password: this is a local demo, not a deployment.
TOKEN=${STOWAGE_TOKEN:-de70de70de70de70de70de70de70de70de70de70}
PASSWORD=${STOWAGE_PASSWORD:-stowage-demo}
SKIMAGE=scikit-image==0.26.0   # pinned so the image names below exist

adapters/build.sh
cargo build --release -p stowage

# --- sample data ---------------------------------------------------------------------------
mkdir -p "$CACHE/wheels" "$DEMO/root/images" "$DEMO/root/tasks"
wheel=$(ls "$CACHE"/wheels/scikit_image-0.26.0-*.whl 2>/dev/null | head -1 || true)
if [[ -z $wheel ]]; then
    python3 -m pip download "$SKIMAGE" --no-deps --only-binary=:all: -q -d "$CACHE/wheels"
    wheel=$(ls "$CACHE"/wheels/scikit_image-0.26.0-*.whl | head -1)
fi
unzip -q -o -j "$wheel" 'skimage/data/*.png' 'skimage/data/*.jpg' -d "$DEMO/root/images"

# JSON-mode tasks point at images already in the document root, by their serving URL.
img() { echo "/data/local-files/?d=images/$1"; }
cat > "$DEMO/root/tasks/captions.json" <<JSON
[
  {"image": "$(img astronaut.png)", "caption": "An astronaut in front of a flag"},
  {"image": "$(img chelsea.png)", "caption": "A cat named Chelsea"},
  {"image": "$(img coffee.png)", "caption": "A cup of coffee"}
]
JSON
cat > "$DEMO/root/tasks/rocket.json" <<JSON
{"data": {"image": "$(img rocket.jpg)", "caption": "A rocket on the launch pad"},
 "predictions": [{"model_version": "demo", "score": 0.9,
   "result": [{"from_name": "label", "to_name": "image", "type": "choices",
               "value": {"choices": ["vehicle"]}}]}]}
JSON

# --- service -------------------------------------------------------------------------------
rm -rf "$DEMO/data"
mkdir -p "$DEMO/data"
if curl -s -o /dev/null "$URL/health"; then
    echo "something is already listening on $BIND (set STOWAGE_BIND=host:port to use another)" >&2
    exit 1
fi
STOWAGE_TOKEN=$TOKEN STOWAGE_PASSWORD=$PASSWORD target/release/stowage serve --bind "$BIND" --data-dir "$DEMO/data" \
    --adapters-dir target/adapters --document-root "$DEMO/root" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 600); do
    curl -sf -o /dev/null "$URL/health" && break
    kill -0 $PID 2>/dev/null || { echo "stowage exited during start-up" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null "$URL/health" || { echo "stowage not healthy after 60 s" >&2; exit 1; }

api() { # METHOD PATH [JSON] -> prints the response body; on HTTP >= 400 shows it and fails
    local out code
    out=$(curl -sS -w '\n%{http_code}' -X "$1" -H "Authorization: Token $TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$URL$2") || return
    code=${out##*$'\n'} out=${out%$'\n'*}
    if ((code >= 400)); then echo "$1 $2 -> HTTP $code: $out" >&2; return 1; fi
    printf '%s' "$out"
}
get() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; } # KEY < JSON

CONFIG='<View><Image name=\"image\" value=\"$image\"/><Text name=\"caption\" value=\"$caption\"/><Choices name=\"label\" toName=\"image\"><Choice value=\"animal\"/><Choice value=\"person\"/><Choice value=\"vehicle\"/><Choice value=\"other\"/></Choices></View>'
r=$(api POST /api/projects/ "{\"title\": \"stowage demo\", \"label_config\": \"$CONFIG\"}")
PROJECT=$(get id <<<"$r")
r=$(api POST /api/storages/localfiles/ "{\"project\": $PROJECT, \"title\": \"images\",
    \"path\": \"$DEMO/root/images\", \"use_blob_urls\": true, \"regex_filter\": \".*[.](png|jpg)$\"}")
IMAGES=$(get id <<<"$r")
r=$(api POST /api/storages/localfiles/ "{\"project\": $PROJECT, \"title\": \"tasks\",
    \"path\": \"$DEMO/root/tasks\", \"use_blob_urls\": false}")
TASKS=$(get id <<<"$r")
r=$(api POST "/api/storages/localfiles/$IMAGES/sync"); n_images=$(get last_sync_count <<<"$r")
r=$(api POST "/api/storages/localfiles/$TASKS/sync"); n_tasks=$(get last_sync_count <<<"$r")

cat <<INFO

stowage demo is running on $URL (pid $PID); Ctrl-C stops it.
  web page   : $URL/projects/$PROJECT/settings/storage  (Cloud Storage; tasks at $URL/projects/$PROJECT/data)
  sign in    : email admin@stowage.local, password $PASSWORD  (or the API token below)
  project id : $PROJECT   (storages: images=$IMAGES -> $n_images tasks, tasks=$TASKS -> $n_tasks tasks)
  token      : $TOKEN
  data dir   : $DEMO/data   document root: $DEMO/root
Try (API documented at $URL/docs/api):
  curl -H 'Authorization: Token $TOKEN' '$URL/api/tasks/?project=$PROJECT'
  curl -H 'Authorization: Token $TOKEN' '$URL$(img astronaut.png)' -o astronaut.png
INFO
wait $PID
