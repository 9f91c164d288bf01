"""Flows shared by the object-store suites (test_sdk_s3.py, test_sdk_gcs.py, test_sdk_azure.py),
driven through the official Label Studio SDK 2.x client and written once for every backend.

Each backend fixture of conftest.py (`s3`, `gcs`, `azure`) is an `ObjectStore`: the storage type,
the task URI scheme, its bucket (Azure: container), SDK connection arguments, and a small client of
the emulator that puts, reads and lists objects. A backend's test module calls these flows from
thin test functions, passing what only it knows (the shape of its signed URLs, the connection
fields it echoes, its error messages), and keeps its own checks beside them.

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md §1.1 fields, §2
sync, §3 resolving/presign, §4 export): a client written against LS must see the same fields,
statuses, counts, task data, resolver links and exported objects.
"""

import base64
import json

import pytest
import requests
from helpers import (IMAGE_CONFIG, TEXT_CONFIG, api, assert_no_secrets, canon, finished, png, project, raw_json,
                     raw_tasks, synced, synced_raw, tasks_of)
from label_studio_sdk.core.api_error import ApiError

MIXED_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""


class ObjectStore:
    """The uniform interface of a backend fixture. Subclasses set the class attributes and
    implement `storage_args`, `put`, `get` and `keys_under`."""

    type: str  # storage type: `client.import_storage.<type>`, `/api/storages/<type>` (s3, gcs, azure)
    scheme: str  # scheme of task URIs (s3, gs, azure-blob)
    bucket_field: str  # the SDK field naming the bucket: `bucket`, or Azure's `container`
    secret_fields: tuple  # write-only fields: never in a storage response
    bucket: str  # the bucket (container) the tests share, each under its own prefix

    @property
    def secret(self) -> str:
        """A credential value no response may contain."""
        raise NotImplementedError

    def storage_args(self, signed: bool = False) -> dict:
        """Connection fields of a storage, as SDK `create()`/`validate()` keyword arguments;
        `signed`: with the credentials presigned URLs need (only GCS can do without)."""
        raise NotImplementedError

    def put(self, key: str, body, metadata: dict = None) -> bytes:
        """Writes an object (`str` bodies as UTF-8), with user metadata; returns the bytes."""
        raise NotImplementedError

    def get(self, key: str) -> tuple:
        """An object's bytes and its Content-Type."""
        raise NotImplementedError

    def keys_under(self, prefix: str) -> list:
        """Every key under `prefix` (no delimiter), sorted."""
        raise NotImplementedError

    def put_folder(self, name: str) -> None:
        """A folder placeholder for `name`: an empty object `name/` (Azure overrides it)."""
        self.put(name + "/", b"")

    def uri(self, key: str) -> str:
        """The task URI of `key` in the shared bucket, e.g. `s3://bucket/key`."""
        return f"{self.scheme}://{self.bucket}/{key}"

    def key_of(self, uri: str) -> str:
        """The key of a task URI of the shared bucket."""
        return uri.removeprefix(f"{self.scheme}://{self.bucket}/")

    def imports(self, client):
        """The SDK's import storage client of this type."""
        return getattr(client.import_storage, self.type)

    def exports(self, client):
        """The SDK's export storage client of this type."""
        return getattr(client.export_storage, self.type)

    def no_secrets(self, body) -> None:
        """No secret field, nor the `secret` value, in any storage of `body`."""
        assert_no_secrets(body, self.secret_fields, self.secret)


class MessageStart(str):
    """An expected refusal message of which only the start is fixed."""


def resolver_link(task_id: int, uri: str) -> str:
    """LS: "/tasks/{id}/resolve/?fileuri=" + urlsafe base64 of the URI, '=' padding kept."""
    return f"/tasks/{task_id}/resolve/?fileuri={base64.urlsafe_b64encode(uri.encode()).decode()}"


def resolve(server, link: str, **kw) -> requests.Response:
    """GET a resolver link with the service's token, not following the redirect."""
    return api(server, "GET", link, allow_redirects=False, **kw)


def listed(server, storages, store: ObjectStore, pid: int, path: str) -> tuple:
    """The project's storages listed by the SDK client `storages` and by a raw GET of `path` (all
    types), neither showing a secret: (the SDK's ids, the raw list)."""
    raw = storages.with_raw_response.list(project=pid)
    store.no_secrets(raw_json(raw))
    r = api(server, "GET", path, params={"project": pid})
    assert r.status_code == 200
    store.no_secrets(r.json())
    return [s.id for s in raw.data], r.json()


def make_images(store: ObjectStore, base: str) -> dict:
    """Objects the blob import must pick up (key -> bytes), plus ones it must not."""
    images = {
        f"{base}/cat.png": png(4, 3, (200, 120, 40)),
        f"{base}/dog.png": png(2, 2, (90, 90, 90)),
        f"{base}/bird.jpg": png(3, 5, (10, 160, 220)),
        f"{base}/my cat.png": png(1, 1, (0, 0, 0)),  # a space in the key: signing and base64 must cope
    }
    for key, body in images.items():
        store.put(key, body)
    store.put(f"{base}/notes.txt", "not an image")           # excluded by regex_filter
    store.put(f"{base}/sub/deep.png", png(1, 2, (1, 2, 3)))  # only seen with recursive_scan
    store.put_folder(f"{base}/folder")                       # folder placeholders: never a task
    store.put_folder(f"{base}/sub")
    return images


def blob_import_presign_and_resync(server, client, store: ObjectStore, prefix: str, signed_url,
                                   connection_fields) -> tuple:
    """Blob mode, presigned: validate, create, sync (one task per object under the config's first
    data key), resolver links answering 303 to a URL that serves the bytes (`signed_url(store,
    location, key, ttl_seconds)` checks its shape), a re-sync creating nothing, get and list, and a
    PATCH without credentials that keeps them. Secrets never appear; `connection_fields(store,
    storage, body)` checks the echoed connection. Returns (project id, storage id, task count)."""
    imports = store.imports(client)
    base = f"{prefix}/images"
    images = make_images(store, base)
    pid = project(client, f"{store.type} blob import", IMAGE_CONFIG)
    args = dict(project=pid, prefix=base + "/", regex_filter=r".*\.(png|jpg)$", use_blob_urls=True,
                presign=True, presign_ttl=5, recursive_scan=False, **store.storage_args(signed=True))

    assert imports.validate(**args) is None

    raw = imports.with_raw_response.create(title="images", **args)
    assert raw.status_code == 201
    store.no_secrets(raw_json(raw))
    st = raw.data
    assert (st.project, st.type, st.status, st.title) == (pid, store.type, "initialized", "images")
    assert (getattr(st, store.bucket_field), st.prefix, st.regex_filter) == (store.bucket, base + "/",
                                                                              r".*\.(png|jpg)$")
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (True, True, 5, False)
    connection_fields(store, st, raw_json(raw))
    assert st.last_sync_count is None

    answer, raw = synced_raw(imports, st.id)
    store.no_secrets(raw_json(answer))
    store.no_secrets(raw_json(raw))
    st = raw.data
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == len(images)

    # Stored data: one task per object, `scheme://bucket/key` under the config's first data key.
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": store.uri(k)} for k in images)
    uri_of = {t["id"]: t["data"]["image"] for t in stored}

    # Served data (resolve_uri defaults to true): the resolver link of each URI.
    tasks = tasks_of(client, pid)
    assert {t.id: t.data for t in tasks} == {i: {"image": resolver_link(i, u)} for i, u in uri_of.items()}

    # The link answers 303 to a presigned URL that serves the object's bytes.
    for t in tasks:
        key = store.key_of(uri_of[t.id])
        r = resolve(server, t.data["image"])
        assert r.status_code == 303, (r.status_code, r.text)
        assert r.headers["Cache-Control"] == "no-store, max-age=300"
        location = r.headers["Location"]
        signed_url(store, location, key, 300)  # presign_ttl minutes * 60
        got = requests.get(location, timeout=30)  # plain client, no service token
        assert got.status_code == 200, (location, got.status_code, got.text)
        assert got.content == images[key]

    assert resolve(server, tasks[0].data["image"], headers={"Authorization": None}).status_code == 401

    # A re-sync creates nothing.
    answer, raw = synced_raw(imports, st.id)
    store.no_secrets(raw_json(answer))
    store.no_secrets(raw_json(raw))
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0), raw.data.traceback
    assert len(tasks_of(client, pid)) == len(images)

    raw = imports.with_raw_response.get(st.id)
    store.no_secrets(raw_json(raw))
    got = raw.data
    assert (got.id, got.project, got.status, got.last_sync_count) == (st.id, pid, "completed", 0)
    assert (getattr(got, store.bucket_field), got.prefix, got.regex_filter, got.presign_ttl) == (
        store.bucket, base + "/", r".*\.(png|jpg)$", 5)

    ids, everything = listed(server, imports, store, pid, "/api/storages/")
    assert ids == [st.id]
    assert [(s["id"], s["type"]) for s in everything] == [(st.id, store.type)]

    # PATCH without credentials keeps the stored ones: widening the filter then imports notes.txt.
    raw = imports.with_raw_response.update(st.id, regex_filter=r".*\.(png|jpg|txt)$", title="all")
    store.no_secrets(raw_json(raw))
    assert (raw.data.regex_filter, raw.data.title, getattr(raw.data, store.bucket_field)) == (
        r".*\.(png|jpg|txt)$", "all", store.bucket)
    st = synced(imports, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1)
    assert len(tasks_of(client, pid)) == len(images) + 1
    return pid, st.id, len(images) + 1


def deleting_the_storage_keeps_its_tasks(client, store: ObjectStore, pid: int, storage_id: int, count: int):
    """Deleting an import storage keeps the `count` tasks it created (LS [obs])."""
    imports = store.imports(client)
    assert imports.delete(storage_id) is None
    assert list(imports.list(project=pid)) == []
    assert len(tasks_of(client, pid)) == count


def blob_recursive_proxy(server, client, store: ObjectStore, prefix: str):
    """Blob mode, recursive, not presigned: regex_filter sees the whole key, and the service
    streams the bytes itself (LS proxy mode), with Range."""
    imports = store.imports(client)
    base = f"{prefix}/images"
    images = make_images(store, base)
    pid = project(client, f"{store.type} proxy", IMAGE_CONFIG)
    st = imports.create(project=pid, prefix=base, regex_filter=r".*\.png$", use_blob_urls=True, presign=False,
                        recursive_scan=True, **store.storage_args())
    assert (st.presign, st.recursive_scan) == (False, True)
    st = synced(imports, st.id)
    assert st.status == "completed", st.traceback

    # regex_filter sees the whole key: sub/deep.png in (recursive), bird.jpg, notes.txt and the
    # folder placeholders out.
    expected = {k: v for k, v in images.items() if k.endswith(".png")}
    expected[f"{base}/sub/deep.png"] = png(1, 2, (1, 2, 3))
    assert st.last_sync_count == len(expected)
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": store.uri(k)} for k in expected)

    # presign=false: the service streams the bytes itself (LS proxy mode).
    for t in tasks_of(client, pid):
        uri = next(s["data"]["image"] for s in stored if s["id"] == t.id)
        body = expected[store.key_of(uri)]
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


def json_mode_and_uri_rewriting(server, client, store: ObjectStore, prefix: str, signed_url):
    """JSON mode: a plain dict, a full task with annotations, an array and JSONL lines become
    tasks (not recursive); URIs of the storage's bucket are shown as resolver links presigned for
    the default minute (`signed_url` checks the URL), others are left as they are; a re-sync
    creates nothing."""
    imports = store.imports(client)
    base = f"{prefix}/tasks"
    cat = store.uri(f"{prefix}/media/cat.png")
    foreign = f"{store.scheme}://some-other-bucket/cat.png"  # no storage of the project serves it: unchanged
    cat_body = store.put(f"{prefix}/media/cat.png", png(4, 4, (1, 2, 3)))
    ann_result = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]
    store.put(f"{base}/plain.json", json.dumps({"image": cat, "text": "a plain dict", "n": 1}))
    store.put(f"{base}/full.json", json.dumps({"data": {"image": foreign, "text": "full"},
                                               "annotations": [{"result": ann_result}]}))
    store.put(f"{base}/foreign.json", json.dumps({"image": foreign, "text": "foreign"}))
    store.put(f"{base}/array.json", json.dumps([{"image": cat, "text": "array 0"}, {"text": "array 1"}]))
    store.put(f"{base}/lines.jsonl", '{"text": "line 0"}\n{"text": "line 1"}\n')
    store.put(f"{base}/deeper/skipped.json", json.dumps({"text": "not recursive"}))
    pid = project(client, f"{store.type} json import", MIXED_CONFIG)

    st = imports.create(project=pid, prefix=base, use_blob_urls=False, **store.storage_args(signed=True))
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (False, True, 1, False)
    st = synced(imports, st.id)
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == 7

    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon([
        {"image": cat, "text": "a plain dict", "n": 1},
        {"image": foreign, "text": "full"},
        {"image": foreign, "text": "foreign"},
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
    signed_url(store, r.headers["Location"], f"{prefix}/media/cat.png", 60)  # default ttl 1 min
    assert requests.get(r.headers["Location"], timeout=30).content == cat_body
    assert store.get(f"{prefix}/media/cat.png")[0] == cat_body
    # A bucket no storage of the project covers is not resolved.
    assert resolve(server, resolver_link(with_cat.id, foreign)).status_code == 404

    st = synced(imports, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == 7


def validate_and_create_refuse_bad_connections(client, store: ObjectStore, prefix: str, missing: tuple,
                                               empty_message, cases: dict = None, leaks: tuple = ()) -> tuple:
    """Validate and create both refuse (400) a missing bucket (`missing`: its name and the exact
    message), an import prefix without objects (`empty_message(prefix)`) and the backend's own
    `cases` (name -> (args, message): `None` checks the status only, a `MessageStart` the start,
    a `str` the whole message); no answer contains the store's secret nor any of `leaks`; nothing
    is created, and an export target may be empty (LS only requires the bucket). Returns (project
    id, the good connection arguments)."""
    imports = store.imports(client)
    store.put(f"{prefix}/x.json", "{}")
    pid = project(client, f"{store.type} bad", TEXT_CONFIG)
    good = store.storage_args()
    bucket, message = missing
    cases = {
        "missing bucket": (dict(good, prefix=prefix, **{store.bucket_field: bucket}), message),
        "empty prefix": (dict(good, prefix=f"{prefix}-nothing-here"), empty_message(f"{prefix}-nothing-here")),
        **(cases or {}),
    }
    for name, (args, message) in cases.items():
        for call in (imports.validate, imports.create):
            with pytest.raises(ApiError) as e:
                call(project=pid, **args)
            assert e.value.status_code == 400, (name, call.__name__, e.value.status_code, e.value.body)
            if isinstance(message, MessageStart):
                got = e.value.body["validation_errors"]["non_field_errors"][0]
                assert got.startswith(message), (name, got)
            elif message is not None:
                assert e.value.body["validation_errors"]["non_field_errors"] == [message], (name, e.value.body)
            text = json.dumps(e.value.body)
            for leak in (store.secret, *leaks):
                assert leak not in text, (name, leak)
    assert list(imports.list(project=pid)) == []

    # An export target may be empty (LS only requires the bucket).
    assert store.exports(client).validate(project=pid, prefix=f"{prefix}-nothing-here", **good) is None
    return pid, good


def export_writes_one_object_per_annotation(server, client, store: ObjectStore, prefix: str, connection_fields):
    """Export: every annotation save writes `{prefix}/{annotation id}` straight away, an update
    rewrites it; a sync (incremental) writes only what changed since; a target created later gets
    them all at once, by its first sync in the background; deleting an annotation deletes its
    object only where `can_delete_objects` allows it. Secrets never appear; `connection_fields(store,
    storage, body)` checks the echoed connection."""
    imports, exports = store.imports(client), store.exports(client)
    store.put(f"{prefix}/in/t.json", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, f"{store.type} export", TEXT_CONFIG)
    imp = imports.create(project=pid, prefix=f"{prefix}/in", use_blob_urls=False, **store.storage_args())
    assert synced(imports, imp.id).last_sync_count == 2

    out = f"{prefix}/ann"
    raw = exports.with_raw_response.create(project=pid, prefix=out, can_delete_objects=True, title="annotations",
                                           **store.storage_args(signed=True))
    assert raw.status_code == 201
    store.no_secrets(raw_json(raw))
    exp = raw.data
    assert (exp.project, exp.type, getattr(exp, store.bucket_field), exp.prefix, exp.can_delete_objects,
            exp.title) == (pid, store.type, store.bucket, out, True, "annotations")
    connection_fields(store, exp, raw_json(raw))
    # Creating a target queues its first export sync (nothing to write yet): let it finish.
    raw = finished(exports, exp.id, raw=True)
    store.no_secrets(raw_json(raw))
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0), raw.data.traceback

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        assert ann.result == result
        annotations[ann.id] = (result, task)
        # Every annotation save is exported straight away (LS post_save, inline without RQ),
        # at `{prefix}/{annotation id}`.
        assert store.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)

    # An update rewrites the same object.
    first = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(first, result=result).result == result
    annotations[first] = (result, annotations[first][1])
    assert json.loads(store.get(f"{out}/{first}")[0])["result"] == result

    # Every annotation was written when it was saved: the (incremental) sync writes none again.
    answer, raw = synced_raw(exports, exp.id)
    store.no_secrets(raw_json(answer))
    store.no_secrets(raw_json(raw))
    exp = raw.data
    assert (exp.status, exp.last_sync_count) == ("completed", 0), exp.traceback

    assert store.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)
    for ann_id, (result, task) in annotations.items():
        body, content_type = store.get(f"{out}/{ann_id}")
        assert content_type.startswith("application/json"), content_type
        doc = json.loads(body)
        assert (doc["id"], doc["result"], doc["project"]) == (ann_id, result, pid)
        assert doc["was_cancelled"] is False
        assert (doc["task"]["id"], doc["task"]["data"]) == (task.id, task.data)
        assert "annotations" not in doc["task"]

    raw = exports.with_raw_response.get(exp.id)
    store.no_secrets(raw_json(raw))
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0)
    ids, _ = listed(server, exports, store, pid, "/api/storages/export")
    assert ids == [exp.id]

    # An annotation this storage has not written yet (one an import sync created: an import writes
    # nothing on save) is written by the next export sync, and only it.
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
    store.put(f"{prefix}/in/u.json", json.dumps({"data": {"text": "third"}, "annotations": [{"result": result}]}))
    assert synced(imports, imp.id).last_sync_count == 1
    (task,) = [t for t in tasks_of(client, pid) if t.data == {"text": "third"}]
    (added,) = [a["id"] for a in task.annotations]
    assert store.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)
    annotations[added] = (result, task)
    answer, raw = synced_raw(exports, exp.id)
    store.no_secrets(raw_json(answer))
    store.no_secrets(raw_json(raw))
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 1), raw.data.traceback
    assert store.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)
    doc = json.loads(store.get(f"{out}/{added}")[0])
    assert (doc["id"], doc["result"], doc["task"]["id"]) == (added, result, task.id)

    # A target created when annotations exist gets them all at once (LS syncs on creation, here
    # in the background: poll it).
    out2 = f"{prefix}/ann2"
    exp2 = exports.create(project=pid, prefix=out2, **store.storage_args())
    assert exp2.can_delete_objects in (None, False)
    got = finished(exports, exp2.id)
    assert (got.status, got.last_sync_count) == ("completed", 3), got.traceback
    assert store.keys_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)

    # can_delete_objects: deleting an annotation deletes its object.
    gone = min(annotations)
    client.annotations.delete(gone)
    assert store.keys_under(out + "/") == sorted(f"{out}/{i}" for i in annotations if i != gone)
    # ... only where it is allowed: the other target keeps its copy.
    assert store.keys_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)

    assert exports.delete(exp.id) is None
    assert [s.id for s in exports.list(project=pid)] == [exp2.id]
