"""S3 import/export driven through the official Label Studio SDK 2.x client, against a real
S3 server (garage, started by tests/run.sh; see the `s3` fixture in conftest.py).

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md §1.1 fields, §2
sync, §3 resolving/presign, §4 export): a client written against LS must see the same fields,
statuses, counts, task data, resolver links and exported objects.
"""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from helpers import (IMAGE_CONFIG, TEXT_CONFIG, api, assert_no_secrets, canon, png, project, raw_json, raw_tasks,
                     tasks_of)
from label_studio_sdk.core.api_error import ApiError

SECRET_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
MIXED_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""


def put(s3, key: str, body) -> bytes:
    body = body.encode() if isinstance(body, str) else body
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=body)
    return body


def keys_under(s3, prefix: str) -> list:
    pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def resolver_link(task_id: int, uri: str) -> str:
    # LS: "/tasks/{id}/resolve/?fileuri=" + urlsafe base64 of the URI, '=' padding kept.
    return f"/tasks/{task_id}/resolve/?fileuri={base64.urlsafe_b64encode(uri.encode()).decode()}"


def make_images(s3, base: str) -> dict:
    """Objects the blob import must pick up (key -> bytes), plus ones it must not."""
    images = {
        f"{base}/cat.png": png(4, 3, (200, 120, 40)),
        f"{base}/dog.png": png(2, 2, (90, 90, 90)),
        f"{base}/bird.jpg": png(3, 5, (10, 160, 220)),
        f"{base}/my cat.png": png(1, 1, (0, 0, 0)),  # a space in the key: signing and base64 must cope
    }
    for key, body in images.items():
        put(s3, key, body)
    put(s3, f"{base}/notes.txt", "not an image")           # excluded by regex_filter
    put(s3, f"{base}/sub/deep.png", png(1, 2, (1, 2, 3)))  # only seen with recursive_scan
    return images


def resolve(server, link: str, **kw) -> requests.Response:
    return api(server, "GET", link, allow_redirects=False, **kw)


def test_blob_mode_import_presign_and_resync(server, client, s3, s3_prefix):
    base = f"{s3_prefix}/images"
    images = make_images(s3, base)
    pid = project(client, "s3 blob import", IMAGE_CONFIG)
    args = dict(project=pid, prefix=base + "/", regex_filter=r".*\.(png|jpg)$", use_blob_urls=True,
                presign=True, presign_ttl=5, recursive_scan=False, **s3.storage_args())

    assert client.import_storage.s3.validate(**args) is None

    raw = client.import_storage.s3.with_raw_response.create(title="images", **args)
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    st = raw.data
    assert (st.project, st.type, st.status, st.title) == (pid, "s3", "initialized", "images")
    assert (st.bucket, st.prefix, st.regex_filter) == (s3.bucket, base + "/", r".*\.(png|jpg)$")
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (True, True, 5, False)
    assert (st.region_name, st.s3endpoint) == (s3.region, s3.endpoint)
    assert st.last_sync_count is None

    raw = client.import_storage.s3.with_raw_response.sync(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    st = raw.data
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == len(images)

    # Stored data: one task per object, `s3://bucket/key` under the config's first data key.
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"s3://{s3.bucket}/{k}"} for k in images)
    uri_of = {t["id"]: t["data"]["image"] for t in stored}

    # Served data (resolve_uri defaults to true): the resolver link of each URI.
    tasks = tasks_of(client, pid)
    assert {t.id: t.data for t in tasks} == {i: {"image": resolver_link(i, u)} for i, u in uri_of.items()}

    # The link answers 303 to a presigned GET that serves the object's bytes.
    for t in tasks:
        key = uri_of[t.id].removeprefix(f"s3://{s3.bucket}/")
        r = resolve(server, t.data["image"])
        assert r.status_code == 303, (r.status_code, r.text)
        assert r.headers["Cache-Control"] == "no-store, max-age=300"
        location = r.headers["Location"]
        assert location.startswith(s3.endpoint + "/"), location
        query = parse_qs(urlsplit(location).query)
        assert query["X-Amz-Expires"] == ["300"]  # presign_ttl minutes * 60
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        got = requests.get(location, timeout=30)  # plain client, no service token
        assert got.status_code == 200, (location, got.status_code, got.text)
        assert got.content == images[key]

    assert resolve(server, tasks[0].data["image"], headers={"Authorization": None}).status_code == 401

    st = client.import_storage.s3.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == len(images)

    raw = client.import_storage.s3.with_raw_response.get(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    got = raw.data
    assert (got.id, got.project, got.status, got.last_sync_count) == (st.id, pid, "completed", 0)
    assert (got.bucket, got.prefix, got.regex_filter, got.presign_ttl) == (s3.bucket, base + "/", r".*\.(png|jpg)$", 5)

    raw = client.import_storage.s3.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    assert [s.id for s in raw.data] == [st.id]
    r = api(server, "GET", "/api/storages/", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS)
    assert [(s["id"], s["type"]) for s in r.json()] == [(st.id, "s3")]

    # PATCH without credentials keeps the stored ones: widening the filter then imports notes.txt.
    raw = client.import_storage.s3.with_raw_response.update(st.id, regex_filter=r".*\.(png|jpg|txt)$", title="all")
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    assert (raw.data.regex_filter, raw.data.title, raw.data.bucket) == (r".*\.(png|jpg|txt)$", "all", s3.bucket)
    st = client.import_storage.s3.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1)
    assert len(tasks_of(client, pid)) == len(images) + 1

    # Deleting the storage keeps its tasks (LS [obs]).
    assert client.import_storage.s3.delete(st.id) is None
    assert list(client.import_storage.s3.list(project=pid)) == []
    assert len(tasks_of(client, pid)) == len(images) + 1


def test_blob_mode_recursive_proxy(server, client, s3, s3_prefix):
    base = f"{s3_prefix}/images"
    images = make_images(s3, base)
    pid = project(client, "s3 proxy", IMAGE_CONFIG)
    st = client.import_storage.s3.create(
        project=pid, prefix=base, regex_filter=r".*\.png$", use_blob_urls=True, presign=False,
        recursive_scan=True, **s3.storage_args())
    assert (st.presign, st.recursive_scan) == (False, True)
    st = client.import_storage.s3.sync(st.id)
    assert st.status == "completed", st.traceback

    # regex_filter sees the whole key: sub/deep.png in (recursive), bird.jpg and notes.txt out.
    expected = {k: v for k, v in images.items() if k.endswith(".png")}
    expected[f"{base}/sub/deep.png"] = png(1, 2, (1, 2, 3))
    assert st.last_sync_count == len(expected)
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"s3://{s3.bucket}/{k}"} for k in expected)

    # presign=false: the service streams the bytes itself (LS proxy mode).
    for t in tasks_of(client, pid):
        uri = next(s["data"]["image"] for s in stored if s["id"] == t.id)
        body = expected[uri.removeprefix(f"s3://{s3.bucket}/")]
        assert t.data["image"] == resolver_link(t.id, uri)
        r = resolve(server, t.data["image"])
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.content == body
        assert r.headers["Content-Length"] == str(len(body))
        assert r.headers["Accept-Ranges"] == "bytes"
        r = resolve(server, t.data["image"], headers={"Range": "bytes=1-4"})
        assert r.status_code == 206, (r.status_code, r.text)
        assert r.content == body[1:5]
        assert r.headers["Content-Range"] == f"bytes 1-4/{len(body)}"


def test_json_mode_and_uri_rewriting(server, client, s3, s3_prefix):
    base = f"{s3_prefix}/tasks"
    cat = f"s3://{s3.bucket}/{s3_prefix}/media/cat.png"
    foreign = "s3://some-other-bucket/cat.png"  # no storage of the project serves it: unchanged
    cat_body = put(s3, f"{s3_prefix}/media/cat.png", png(4, 4, (1, 2, 3)))
    ann_result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]
    put(s3, f"{base}/plain.json", json.dumps({"image": cat, "text": "a plain dict", "n": 1}))
    put(s3, f"{base}/full.json", json.dumps({"data": {"image": foreign, "text": "full"},
                                             "annotations": [{"result": ann_result}]}))
    put(s3, f"{base}/array.json", json.dumps([{"image": cat, "text": "array 0"}, {"text": "array 1"}]))
    put(s3, f"{base}/lines.jsonl", '{"text": "line 0"}\n{"text": "line 1"}\n')
    put(s3, f"{base}/deeper/skipped.json", json.dumps({"text": "not recursive"}))
    pid = project(client, "s3 json import", MIXED_CONFIG)

    st = client.import_storage.s3.create(project=pid, prefix=base, use_blob_urls=False, **s3.storage_args())
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (False, True, 1, False)
    st = client.import_storage.s3.sync(st.id)
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
    assert parse_qs(urlsplit(r.headers["Location"]).query)["X-Amz-Expires"] == ["60"]  # default ttl 1 min
    assert requests.get(r.headers["Location"], timeout=30).content == cat_body
    # A bucket no storage of the project covers is not resolved.
    assert resolve(server, resolver_link(with_cat.id, foreign)).status_code == 404

    st = client.import_storage.s3.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == 6


def test_validate_and_create_refuse_bad_connections(client, s3, s3_prefix):
    put(s3, f"{s3_prefix}/x.json", "{}")
    pid = project(client, "s3 bad", TEXT_CONFIG)
    good = s3.storage_args()
    cases = {
        "wrong secret": dict(good, aws_secret_access_key="0" * 64, prefix=s3_prefix),
        "missing bucket": dict(good, bucket="no-such-bucket-stowage", prefix=s3_prefix),
        "empty prefix": dict(good, prefix=f"{s3_prefix}-nothing-here"),
    }
    for name, args in cases.items():
        for call in (client.import_storage.s3.validate, client.import_storage.s3.create):
            with pytest.raises(ApiError) as e:
                call(project=pid, **args)
            assert e.value.status_code == 400, (name, call.__name__, e.value.status_code, e.value.body)
            assert s3.secret not in json.dumps(e.value.body)
    assert list(client.import_storage.s3.list(project=pid)) == []

    # Stored secrets never follow a connection change (reference §8.4): a new endpoint or bucket
    # without the credentials re-entered is refused, with them it is accepted.
    st = client.import_storage.s3.create(project=pid, prefix=s3_prefix, **good)
    for change in ({"s3endpoint": s3.endpoint.replace("127.0.0.1", "localhost")}, {"bucket": "some-other-bucket"}):
        with pytest.raises(ApiError) as e:
            client.import_storage.s3.update(st.id, **change)
        assert e.value.status_code == 400, (change, e.value.status_code, e.value.body)
    st = client.import_storage.s3.update(st.id, **dict(good, s3endpoint=s3.endpoint.replace("127.0.0.1", "localhost")))
    assert st.s3endpoint == s3.endpoint.replace("127.0.0.1", "localhost")
    st = client.import_storage.s3.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1), st.traceback
    client.import_storage.s3.delete(st.id)

    # An export target may be empty (LS only requires the bucket).
    assert client.export_storage.s3.validate(project=pid, prefix=f"{s3_prefix}-nothing-here", **good) is None


def test_export_writes_one_object_per_annotation(server, client, s3, s3_prefix):
    put(s3, f"{s3_prefix}/in/t.json", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, "s3 export", TEXT_CONFIG)
    imp = client.import_storage.s3.create(project=pid, prefix=f"{s3_prefix}/in", use_blob_urls=False,
                                          **s3.storage_args())
    assert client.import_storage.s3.sync(imp.id).last_sync_count == 2

    out = f"{s3_prefix}/ann"
    raw = client.export_storage.s3.with_raw_response.create(
        project=pid, prefix=out, can_delete_objects=True, title="annotations", **s3.storage_args())
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    exp = raw.data
    assert (exp.project, exp.type, exp.bucket, exp.prefix, exp.can_delete_objects) == (pid, "s3", s3.bucket, out, True)
    assert (exp.region_name, exp.s3endpoint, exp.title) == (s3.region, s3.endpoint, "annotations")

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        assert ann.result == result
        annotations[ann.id] = (result, task)
        # Every annotation save is exported straight away (LS post_save, inline without RQ).
        assert keys_under(s3, out + "/") == sorted(f"{out}/{i}" for i in annotations)

    # An update rewrites the same object.
    first = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(first, result=result).result == result
    annotations[first] = (result, annotations[first][1])
    doc = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=f"{out}/{first}")["Body"].read())
    assert doc["result"] == result

    raw = client.export_storage.s3.with_raw_response.sync(exp.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    exp = raw.data
    assert exp.status == "completed", exp.traceback
    assert exp.last_sync_count == 2

    assert keys_under(s3, out + "/") == sorted(f"{out}/{i}" for i in annotations)
    for ann_id, (result, task) in annotations.items():
        doc = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=f"{out}/{ann_id}")["Body"].read())
        assert doc["id"] == ann_id
        assert doc["result"] == result
        assert doc["project"] == pid
        assert doc["was_cancelled"] is False
        assert doc["task"]["id"] == task.id
        assert doc["task"]["data"] == task.data
        assert "annotations" not in doc["task"]

    raw = client.export_storage.s3.with_raw_response.get(exp.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 2)
    raw = client.export_storage.s3.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS)
    assert [s.id for s in raw.data] == [exp.id]
    r = api(server, "GET", "/api/storages/export", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS)

    # A target created when annotations exist gets them all at once (LS syncs on creation).
    out2 = f"{s3_prefix}/ann2"
    exp2 = client.export_storage.s3.create(project=pid, prefix=out2, **s3.storage_args())
    assert exp2.can_delete_objects in (None, False)
    assert keys_under(s3, out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)
    got = client.export_storage.s3.get(exp2.id)
    assert (got.status, got.last_sync_count) == ("completed", 2)

    # can_delete_objects: deleting an annotation deletes its object (LS, S3 and localfiles only).
    gone = min(annotations)
    client.annotations.delete(gone)
    assert keys_under(s3, out + "/") == [f"{out}/{i}" for i in sorted(annotations) if i != gone]
    # ... only where it is allowed: the other target keeps its copy.
    assert keys_under(s3, out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)

    assert client.export_storage.s3.delete(exp.id) is None
    assert [s.id for s in client.export_storage.s3.list(project=pid)] == [exp2.id]
