"""GCS import/export driven through the official Label Studio SDK 2.x client, against
fake-gcs-server (started by tests/run.sh; see the `gcs` fixture in conftest.py).

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md §1.1 fields, §2
sync, §3 resolving/presign, §4 export): a client written against LS must see the same fields,
statuses, counts, task data (`gs://bucket/key`), resolver links and exported objects. The emulator's
endpoint (`gcs_endpoint`, not an SDK argument) travels as an additional body parameter.
"""

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from helpers import (IMAGE_CONFIG, TEXT_CONFIG, api, assert_no_secrets, canon, png, project, raw_json, raw_tasks,
                     tasks_of)
from label_studio_sdk.core.api_error import ApiError

SECRET_FIELDS = ("google_application_credentials",)
# Google's published dummy service-account key (googleapis/conformance-tests), the adapter's test data.
KEY = (Path(__file__).resolve().parents[2] / "adapters/gcs/tests/data/test_service_account.json").read_text()
KEY_EMAIL = "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com"


def resolver_link(task_id: int, uri: str) -> str:
    # LS: "/tasks/{id}/resolve/?fileuri=" + urlsafe base64 of the URI, '=' padding kept.
    return f"/tasks/{task_id}/resolve/?fileuri={base64.urlsafe_b64encode(uri.encode()).decode()}"


def resolve(server, link: str, **kw) -> requests.Response:
    return api(server, "GET", link, allow_redirects=False, **kw)


def make_images(gcs, base: str) -> dict:
    """Objects the blob import must pick up (key -> bytes), plus ones it must not."""
    images = {
        f"{base}/cat.png": png(4, 3, (200, 120, 40)),
        f"{base}/dog.png": png(2, 2, (90, 90, 90)),
        f"{base}/bird.jpg": png(3, 5, (10, 160, 220)),
        f"{base}/my cat.png": png(1, 1, (0, 0, 0)),  # a space in the key: signing and base64 must cope
    }
    for key, body in images.items():
        gcs.put(key, body)
    gcs.put(f"{base}/notes.txt", "not an image")           # excluded by regex_filter
    gcs.put(f"{base}/sub/deep.png", png(1, 2, (1, 2, 3)))  # only seen with recursive_scan
    gcs.put(f"{base}/folder/", b"")                        # a folder placeholder: never a task
    return images


def test_blob_mode_import_signed_urls_and_resync(server, client, gcs, gcs_prefix):
    base = f"{gcs_prefix}/images"
    images = make_images(gcs, base)
    pid = project(client, "gcs blob import", IMAGE_CONFIG)
    args = dict(project=pid, prefix=base + "/", regex_filter=r".*\.(png|jpg)$", use_blob_urls=True,
                presign=True, presign_ttl=5, recursive_scan=False, **gcs.storage_args(KEY))

    assert client.import_storage.gcs.validate(**args) is None

    raw = client.import_storage.gcs.with_raw_response.create(title="images", **args)
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    st = raw.data
    assert (st.project, st.type, st.status, st.title) == (pid, "gcs", "initialized", "images")
    assert (st.bucket, st.prefix, st.regex_filter) == (gcs.bucket, base + "/", r".*\.(png|jpg)$")
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (True, True, 5, False)
    assert (st.google_project_id, raw_json(raw)["gcs_endpoint"]) == (gcs.project, gcs.endpoint)
    assert st.last_sync_count is None

    raw = client.import_storage.gcs.with_raw_response.sync(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    st = raw.data
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == len(images)

    # Stored data: one task per object, `gs://bucket/key` under the config's first data key.
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"gs://{gcs.bucket}/{k}"} for k in images)
    uri_of = {t["id"]: t["data"]["image"] for t in stored}

    # Served data (resolve_uri defaults to true): the resolver link of each URI.
    tasks = tasks_of(client, pid)
    assert {t.id: t.data for t in tasks} == {i: {"image": resolver_link(i, u)} for i, u in uri_of.items()}

    # The link answers 303 to a V4 signed URL (path-style on the endpoint) serving the object's bytes.
    for t in tasks:
        key = uri_of[t.id].removeprefix(f"gs://{gcs.bucket}/")
        r = resolve(server, t.data["image"])
        assert r.status_code == 303, (r.status_code, r.text)
        assert r.headers["Cache-Control"] == "no-store, max-age=300"
        location = r.headers["Location"]
        assert location.startswith(f"{gcs.endpoint}/{gcs.bucket}/{quote(key)}?"), location
        query = parse_qs(urlsplit(location).query)
        assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
        assert query["X-Goog-Expires"] == ["300"]  # presign_ttl minutes * 60
        assert query["X-Goog-Credential"][0].startswith(KEY_EMAIL + "/")
        assert query["X-Goog-SignedHeaders"] == ["host"]
        assert len(query["X-Goog-Signature"][0]) == 512  # hex of a 2048-bit RSA signature
        got = requests.get(location, timeout=30)
        assert got.status_code == 200
        assert got.content == images[key]

    # A re-sync creates nothing.
    raw = client.import_storage.gcs.with_raw_response.sync(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == len(images)

    raw = client.import_storage.gcs.with_raw_response.get(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    assert (raw.data.id, raw.data.bucket, raw.data.prefix, raw.data.presign_ttl) == (st.id, gcs.bucket, base + "/", 5)
    raw = client.import_storage.gcs.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    assert [s.id for s in raw.data] == [st.id]
    r = api(server, "GET", "/api/storages/", params={"project": pid})
    assert [(s["id"], s["type"]) for s in r.json()] == [(st.id, "gcs")]
    assert_no_secrets(r.json(), SECRET_FIELDS, KEY_EMAIL)

    # PATCH without the key keeps it: widening the filter then imports notes.txt.
    st = client.import_storage.gcs.update(st.id, regex_filter=r".*\.(png|jpg|txt)$", title="all")
    assert (st.regex_filter, st.title, st.bucket) == (r".*\.(png|jpg|txt)$", "all", gcs.bucket)
    st = client.import_storage.gcs.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1)
    # ... but a new endpoint needs the key again (stored secrets never follow a storage elsewhere).
    moved = {"additional_body_parameters": {"gcs_endpoint": gcs.endpoint.replace("127.0.0.1", "localhost")}}
    with pytest.raises(ApiError) as e:
        client.import_storage.gcs.update(st.id, request_options=moved)
    assert e.value.status_code == 400
    assert "google_application_credentials" in e.value.body["validation_errors"]

    # Deleting the storage keeps its tasks (LS [obs]).
    assert client.import_storage.gcs.delete(st.id) is None
    assert list(client.import_storage.gcs.list(project=pid)) == []
    assert len(tasks_of(client, pid)) == len(images) + 1


def test_blob_mode_recursive_proxy(server, client, gcs, gcs_prefix):
    base = f"{gcs_prefix}/images"
    images = make_images(gcs, base)
    pid = project(client, "gcs proxy", IMAGE_CONFIG)
    st = client.import_storage.gcs.create(
        project=pid, prefix=base, regex_filter=r".*\.png$", use_blob_urls=True, presign=False,
        recursive_scan=True, **gcs.storage_args())
    assert (st.presign, st.recursive_scan) == (False, True)
    st = client.import_storage.gcs.sync(st.id)
    assert st.status == "completed", st.traceback

    # regex_filter sees the whole key: sub/deep.png in (recursive), bird.jpg and notes.txt out.
    expected = {k: v for k, v in images.items() if k.endswith(".png")}
    expected[f"{base}/sub/deep.png"] = png(1, 2, (1, 2, 3))
    assert st.last_sync_count == len(expected)
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"gs://{gcs.bucket}/{k}"} for k in expected)

    # presign=false: the service streams the bytes itself (LS proxy mode).
    for t in tasks_of(client, pid):
        uri = next(s["data"]["image"] for s in stored if s["id"] == t.id)
        body = expected[uri.removeprefix(f"gs://{gcs.bucket}/")]
        assert t.data["image"] == resolver_link(t.id, uri)
        r = resolve(server, t.data["image"])
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.content == body
        assert r.headers["Content-Length"] == str(len(body))
        r = resolve(server, t.data["image"], headers={"Range": "bytes=1-4"})
        assert r.status_code == 206, (r.status_code, r.text)
        assert r.content == body[1:5]
        assert r.headers["Content-Range"] == f"bytes 1-4/{len(body)}"


def test_json_mode_and_uri_rewriting(server, client, gcs, gcs_prefix):
    base = f"{gcs_prefix}/tasks"
    cat = f"gs://{gcs.bucket}/{gcs_prefix}/media/cat.png"
    foreign = "gs://some-other-bucket/cat.png"  # no storage of the project serves it: unchanged
    gcs.put(f"{gcs_prefix}/media/cat.png", png(4, 4, (1, 2, 3)))
    ann_result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]
    gcs.put(f"{base}/plain.json", json.dumps({"image": cat, "text": "a plain dict", "n": 1}))
    gcs.put(f"{base}/full.json", json.dumps({"data": {"image": foreign, "text": "full"},
                                             "annotations": [{"result": ann_result}]}))
    gcs.put(f"{base}/array.json", json.dumps([{"image": cat, "text": "array 0"}, {"text": "array 1"}]))
    gcs.put(f"{base}/lines.jsonl", '{"text": "line 0"}\n{"text": "line 1"}\n')
    gcs.put(f"{base}/deeper/skipped.json", json.dumps({"text": "not recursive"}))
    pid = project(client, "gcs json import", """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>""")

    st = client.import_storage.gcs.create(project=pid, prefix=base, use_blob_urls=False, **gcs.storage_args(KEY))
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (False, True, 1, False)
    st = client.import_storage.gcs.sync(st.id)
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == 6

    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon([
        {"image": cat, "text": "a plain dict", "n": 1},
        {"image": foreign, "text": "full"},
        {"image": cat, "text": "array 0"}, {"text": "array 1"},
        {"text": "line 0"}, {"text": "line 1"},
    ])
    tasks = tasks_of(client, pid)
    for t in tasks:
        raw = next(s["data"] for s in stored if s["id"] == t.id)
        want = dict(raw)
        if raw.get("image") == cat:
            want["image"] = resolver_link(t.id, cat)
        assert t.data == want
    full = next(t for t in tasks if t.data.get("text") == "full")
    assert [a["result"] for a in full.annotations] == [ann_result]

    with_cat = next(t for t in tasks if t.data.get("text") == "array 0")
    r = resolve(server, with_cat.data["image"])
    assert r.status_code == 303, (r.status_code, r.text)
    assert parse_qs(urlsplit(r.headers["Location"]).query)["X-Goog-Expires"] == ["60"]  # default ttl 1 min
    assert requests.get(r.headers["Location"], timeout=30).content == gcs.get(f"{gcs_prefix}/media/cat.png").content
    assert resolve(server, resolver_link(with_cat.id, foreign)).status_code == 404

    st = client.import_storage.gcs.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == 6


def test_validate_and_create_refuse_bad_connections(client, gcs, gcs_prefix):
    gcs.put(f"{gcs_prefix}/x.json", "{}")
    pid = project(client, "gcs bad", TEXT_CONFIG)
    good = gcs.storage_args()
    cases = {
        "missing bucket": (dict(good, bucket="no-such-bucket-stowage", prefix=gcs_prefix),
                           "Cannot find bucket no-such-bucket-stowage in GCS"),
        "empty prefix": (dict(good, prefix=f"{gcs_prefix}-nothing-here"),
                         f"No blobs found in {gcs.bucket}/{gcs_prefix}-nothing-here or prefix doesn't exist"),
        "malformed key": (dict(good, prefix=gcs_prefix, google_application_credentials=KEY[:400]),
                          "Google Application Credentials must be valid JSON string. unexpected end of input"),
    }
    for name, (args, message) in cases.items():
        for call in (client.import_storage.gcs.validate, client.import_storage.gcs.create):
            with pytest.raises(ApiError) as e:
                call(project=pid, **args)
            assert e.value.status_code == 400, (name, call.__name__, e.value.status_code, e.value.body)
            got = e.value.body["validation_errors"]["non_field_errors"][0]
            assert got.startswith(message), (name, got)
            assert "PRIVATE KEY" not in json.dumps(e.value.body)
    assert list(client.import_storage.gcs.list(project=pid)) == []

    # An export target may be empty (LS only requires the bucket).
    assert client.export_storage.gcs.validate(project=pid, prefix=f"{gcs_prefix}-nothing-here", **good) is None


def test_export_writes_one_object_per_annotation(server, client, gcs, gcs_prefix):
    gcs.put(f"{gcs_prefix}/in/t.json", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, "gcs export", TEXT_CONFIG)
    imp = client.import_storage.gcs.create(project=pid, prefix=f"{gcs_prefix}/in", use_blob_urls=False,
                                           **gcs.storage_args())
    assert client.import_storage.gcs.sync(imp.id).last_sync_count == 2

    out = f"{gcs_prefix}/ann"
    raw = client.export_storage.gcs.with_raw_response.create(
        project=pid, prefix=out, can_delete_objects=True, title="annotations", **gcs.storage_args(KEY))
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    exp = raw.data
    assert (exp.project, exp.type, exp.bucket, exp.prefix, exp.can_delete_objects) == (pid, "gcs", gcs.bucket, out, True)
    assert (exp.google_project_id, exp.title) == (gcs.project, "annotations")

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        annotations[ann.id] = (result, task)
        # Every annotation save is exported straight away (LS post_save, inline without RQ).
        assert gcs.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)

    # An update rewrites the same object.
    first = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(first, result=result).result == result
    annotations[first] = (result, annotations[first][1])
    assert gcs.get(f"{out}/{first}").json()["result"] == result

    raw = client.export_storage.gcs.with_raw_response.sync(exp.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 2), raw.data.traceback

    assert gcs.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)
    for ann_id, (result, task) in annotations.items():
        got = gcs.get(f"{out}/{ann_id}")
        assert got.headers["Content-Type"].startswith("application/json")
        doc = got.json()
        assert (doc["id"], doc["result"], doc["project"], doc["was_cancelled"]) == (ann_id, result, pid, False)
        assert (doc["task"]["id"], doc["task"]["data"]) == (task.id, task.data)
        assert "annotations" not in doc["task"]

    raw = client.export_storage.gcs.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, KEY_EMAIL)
    assert [s.id for s in raw.data] == [exp.id]

    # A target created when annotations exist gets them all at once (LS syncs on creation).
    out2 = f"{gcs_prefix}/ann2"
    exp2 = client.export_storage.gcs.create(project=pid, prefix=out2, **gcs.storage_args())
    assert exp2.can_delete_objects in (None, False)
    assert gcs.keys_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)
    assert (client.export_storage.gcs.get(exp2.id).status, client.export_storage.gcs.get(exp2.id).last_sync_count) \
        == ("completed", 2)

    # can_delete_objects: deleting an annotation deletes its object, only where allowed.
    gone = min(annotations)
    client.annotations.delete(gone)
    assert gcs.keys_under(out + "/") == [f"{out}/{i}" for i in sorted(annotations) if i != gone]
    assert gcs.keys_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)

    assert client.export_storage.gcs.delete(exp.id) is None
    assert [s.id for s in client.export_storage.gcs.list(project=pid)] == [exp2.id]
