"""Redis import/export driven through the official Label Studio SDK 2.x client, against a real
redis-server (started by tests/run.sh; see the `redis_server` fixture in conftest.py).

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md §1.1 fields, §2
sync, §4 export, §5 Redis), except where stowage documents a difference
(adapters/redis/docs.md): `regex_filter` applies to the key, export writes `{path}{annotation id}`,
and a value that is not a task fails for that key only.
"""

import json

import pytest
from helpers import api, assert_no_secrets, canon, finished, project, raw_json, raw_tasks, synced, synced_raw, tasks_of
from label_studio_sdk.core.api_error import ApiError

SECRET_FIELDS = ("password",)
# LS `StorageAnnotationSerializer` (reference §4): the annotation's fields, `completed_by`, `task`.
ANNOTATION_FIELDS = sorted([
    "id", "result", "created_username", "created_ago", "was_cancelled", "ground_truth", "created_at",
    "updated_at", "draft_created_at", "lead_time", "import_id", "last_action", "bulk_created", "project",
    "updated_by", "parent_prediction", "parent_annotation", "last_created_by", "completed_by", "task"])
CANT_CONNECT = "Can't connect to Redis server."


def keys_under(r, prefix: str) -> list:
    return sorted(r.scan_iter(match=prefix.replace("[", "[[]") + "*", count=1000))


def refused(call, **kwargs) -> dict:
    """Calls an SDK method that must answer 400 and returns the error body."""
    with pytest.raises(ApiError) as e:
        call(**kwargs)
    assert e.value.status_code == 400, (call.__name__, e.value.status_code, e.value.body)
    return e.value.body


def test_import_sync_get_list_update_delete(server, client, redis_server, redis_path):
    path, password = redis_path, redis_server.password
    r1 = redis_server.client(1)
    ann_result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
    values = {
        f"{path}plain": json.dumps({"text": "a plain dict", "n": 1}),
        f"{path}full": json.dumps({"data": {"text": "full"}, "annotations": [{"result": ann_result}]}),
        f"{path}array": json.dumps([{"text": "array 0"}, {"text": "array 1"}]),
        f"{path}lines": '{"text": "line 0"}\n{"text": "line 1"}\n',
        f"{path}empty": "",                                  # no task, no link: retried next sync
        f"{path}skip.1": json.dumps({"text": "filtered"}),  # excluded by regex_filter at first
        f"{path[:-1]}-other": json.dumps({"text": "outside the path"}),
    }
    r1.mset(values)
    redis_server.client(3).set(f"{path}plain", json.dumps({"text": "in db 3"}))  # another db
    pid = project(client, "redis import")
    regex = r".*:[a-z]+$"
    # use_blob_urls is kept but ignored: Redis values are always task JSON (as in LS).
    args = dict(project=pid, path=path, regex_filter=regex, use_blob_urls=True, **redis_server.storage_args(1))

    assert client.import_storage.redis.validate(**args) is None

    raw = client.import_storage.redis.with_raw_response.create(title="redis tasks", **args)
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    st = raw.data
    assert (st.project, st.type, st.status, st.title) == (pid, "redis", "initialized", "redis tasks")
    assert (st.path, st.host, st.port, st.db) == (path, redis_server.host, redis_server.port, 1)
    assert raw_json(raw)["port"] == redis_server.port  # a string, as LS stores it
    assert (st.regex_filter, st.use_blob_urls) == (regex, True)
    assert st.last_sync_count is None

    answer, raw = synced_raw(client.import_storage.redis, st.id)
    assert_no_secrets(raw_json(answer), SECRET_FIELDS, password)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    st = raw.data
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == 6
    assert st.meta["tasks_existed"] == 0

    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon([
        {"text": "a plain dict", "n": 1}, {"text": "full"},
        {"text": "array 0"}, {"text": "array 1"}, {"text": "line 0"}, {"text": "line 1"},
    ])
    # Redis values have no URIs to resolve: the SDK sees the stored data unchanged.
    tasks = tasks_of(client, pid)
    assert {t.id: t.data for t in tasks} == {t["id"]: t["data"] for t in stored}
    # The DM task list names the key a task came from (LS [obs]: `storage_filename`).
    key_of = {"a plain dict": "plain", "full": "full", "array 0": "array", "array 1": "array",
              "line 0": "lines", "line 1": "lines"}
    assert {t.data["text"]: t.storage_filename for t in tasks} == {k: path + v for k, v in key_of.items()}
    full = next(t for t in tasks if t.data["text"] == "full")
    assert [a["result"] for a in full.annotations] == [ann_result]
    assert all(not t.annotations for t in tasks if t.id != full.id)

    st = synced(client.import_storage.redis, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert st.meta["tasks_existed"] == 6
    assert len(tasks_of(client, pid)) == 6

    raw = client.import_storage.redis.with_raw_response.get(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    got = raw.data
    assert (got.id, got.project, got.status, got.last_sync_count) == (st.id, pid, "completed", 0)
    assert (got.path, got.host, got.port, got.db, got.regex_filter) == (path, redis_server.host, redis_server.port, 1, regex)

    raw = client.import_storage.redis.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert [s.id for s in raw.data] == [st.id]
    r = api(server, "GET", "/api/storages/", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS, password)
    assert [(s["id"], s["type"]) for s in r.json()] == [(st.id, "redis")]

    # A value filled in later is imported by the next sync; PATCH without the password keeps the
    # stored one: widening the filter then also imports skip.1.
    r1.set(f"{path}empty", json.dumps({"text": "late"}))
    raw = client.import_storage.redis.with_raw_response.update(st.id, regex_filter=r".*:[a-z0-9.]+$", title="all")
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert (raw.data.regex_filter, raw.data.title, raw.data.path, raw.data.db) == (r".*:[a-z0-9.]+$", "all", path, 1)
    st = synced(client.import_storage.redis, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 2), st.traceback
    assert sorted(t["data"]["text"] for t in raw_tasks(server, pid)) == sorted(
        ["a plain dict", "full", "array 0", "array 1", "line 0", "line 1", "late", "filtered"])

    # The stored password never follows a connection change (reference §8.4): a new host
    # without it is refused, with it accepted.
    body = refused(client.import_storage.redis.update, id=st.id, host="localhost")
    assert password not in json.dumps(body)
    assert client.import_storage.redis.get(st.id).host == redis_server.host
    raw = client.import_storage.redis.with_raw_response.update(st.id, host="localhost", password=password)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert raw.data.host == "localhost"
    st = synced(client.import_storage.redis, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0), st.traceback

    # Deleting the storage keeps its tasks (LS [obs]).
    assert client.import_storage.redis.delete(st.id) is None
    assert list(client.import_storage.redis.list(project=pid)) == []
    assert len(tasks_of(client, pid)) == 8


def test_values_that_are_not_tasks_fail_per_key(server, client, redis_server, redis_path):
    path = redis_path
    r1 = redis_server.client(1)
    r1.set(f"{path}good", json.dumps({"text": "good"}))
    r1.set(f"{path}not-json", "s3://x/y.jpg")
    r1.hset(f"{path}hash", "f", "v")
    pid = project(client, "redis bad values")
    st = client.import_storage.redis.create(project=pid, path=path, **redis_server.storage_args(1))
    assert st.use_blob_urls is False and st.regex_filter is None
    st = synced(client.import_storage.redis, st.id)
    # LS fails the whole sync on the first bad value; stowage reports each bad key and imports the rest.
    assert (st.status, st.last_sync_count) == ("completed_with_errors", 1)
    assert sorted(st.traceback.splitlines()) == [
        f"{path}hash: get: invalid configuration: {path}hash: is a hash, not a string value",
        f"{path}not-json: not JSON-formatted tasks (expected a JSON object, a JSON array or JSON Lines)",
    ]
    assert [t["data"] for t in raw_tasks(server, pid)] == [{"text": "good"}]


def test_bad_connections_are_refused_and_db_zero_is_accepted(server, client, redis_server, redis_path):
    pid = project(client, "redis refused")
    good = dict(project=pid, path=redis_path, **redis_server.storage_args(1))
    wrong_password = "wrong-password-do-not-leak-4242"
    calls = (client.import_storage.redis.validate, client.import_storage.redis.create,
             client.export_storage.redis.validate, client.export_storage.redis.create)
    for call in calls:
        for name, change in {"wrong password": {"password": wrong_password},
                             "no password": {"password": None},
                             "closed port": {"port": "1"}}.items():
            body = refused(call, **dict(good, **change))
            assert body["detail"] == "Validation error", (name, call, body)
            assert body["validation_errors"] == {"non_field_errors": [CANT_CONNECT]}, (name, call, body)
            text = json.dumps(body)
            assert redis_server.password not in text and wrong_password not in text
    assert list(client.import_storage.redis.list(project=pid)) == []
    assert list(client.export_storage.redis.list(project=pid)) == []

    # Defaults (LS): db 1 for import, 2 for export; port is a string; an integer port is accepted.
    args = {k: v for k, v in good.items() if k != "db"}
    imp = client.import_storage.redis.create(**args)
    assert (imp.db, imp.port) == (1, redis_server.port)
    exp = client.export_storage.redis.create(**args)
    assert (exp.db, exp.port) == (2, redis_server.port)
    r = api(server, "POST", "/api/storages/redis", json=dict(good, port=int(redis_server.port)))
    assert r.status_code == 201, r.text
    assert r.json()["port"] == redis_server.port

    # validate with `id`: the stored password fills in the missing one only for the same
    # connection settings (reference §8.4).
    same = {k: v for k, v in args.items() if k != "password"}
    assert client.import_storage.redis.validate(id=imp.id, **same) is None
    body = refused(client.import_storage.redis.validate, id=imp.id, **dict(same, host="localhost"))
    assert body["validation_errors"] == {"non_field_errors": [CANT_CONNECT]}

    # PATCH re-checks the connection: a wrong password is refused and nothing changes.
    body = refused(client.import_storage.redis.update, id=imp.id, password=wrong_password)
    assert body["validation_errors"] == {"non_field_errors": [CANT_CONNECT]}
    assert client.import_storage.redis.get(imp.id).db == 1
    # db 0 (Redis's default database) is accepted; Label Studio refuses it ("Please explicitly
    # pass a redis db id...") only because it tests the number for truth.
    assert client.import_storage.redis.validate(**dict(good, db=0)) is None
    zero = client.export_storage.redis.create(**dict(good, db=0))
    assert zero.db == 0
    assert synced(client.import_storage.redis, imp.id).status == "completed"


def test_export_writes_path_and_annotation_id(server, client, redis_server, redis_path):
    password = redis_server.password
    redis_server.client(1).set(f"{redis_path}in", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, "redis export")
    imp = client.import_storage.redis.create(project=pid, path=f"{redis_path}in", **redis_server.storage_args(1))
    assert synced(client.import_storage.redis, imp.id).last_sync_count == 2

    r2 = redis_server.client(2)
    out = f"{redis_path}ann:"
    raw = client.export_storage.redis.with_raw_response.create(
        project=pid, path=out, can_delete_objects=True, title="annotations", **redis_server.storage_args(2))
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    exp = raw.data
    assert (exp.project, exp.type, exp.path, exp.db, exp.can_delete_objects) == (pid, "redis", out, 2, True)
    assert (exp.host, exp.port, exp.title) == (redis_server.host, redis_server.port, "annotations")
    # Creating a target queues its first export sync (nothing to write yet): let it finish.
    raw = finished(client.export_storage.redis, exp.id, raw=True)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0), raw.data.traceback

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        assert ann.result == result
        annotations[ann.id] = (result, task)
        # Every annotation save is exported straight away (LS: Redis inline in the request),
        # under `{path}{annotation id}` (LS ignores `path` and writes the bare id).
        assert keys_under(r2, out) == sorted(f"{out}{a}" for a in annotations)

    # An update rewrites the same key.
    first = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(first, result=result).result == result
    annotations[first] = (result, annotations[first][1])
    assert json.loads(r2.get(f"{out}{first}"))["result"] == result

    # Every annotation was written when it was saved: the (incremental) sync writes none again.
    answer, raw = synced_raw(client.export_storage.redis, exp.id)
    assert_no_secrets(raw_json(answer), SECRET_FIELDS, password)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    exp = raw.data
    assert exp.status == "completed", exp.traceback
    assert exp.last_sync_count == 0

    assert keys_under(r2, out) == sorted(f"{out}{a}" for a in annotations)
    for ann_id, (result, task) in annotations.items():
        doc = json.loads(r2.get(f"{out}{ann_id}"))
        assert sorted(doc) == ANNOTATION_FIELDS
        assert sorted(doc["completed_by"]) == ["email", "first_name", "id", "last_name"]
        assert doc["id"] == ann_id
        assert doc["result"] == result
        assert doc["project"] == pid
        assert doc["was_cancelled"] is False
        assert doc["task"]["id"] == task.id
        assert doc["task"]["data"] == task.data
        assert "annotations" not in doc["task"]
        assert doc["task"]["storage_filename"] == f"{redis_path}in"
    assert keys_under(redis_server.client(1), out) == []  # db 2 only

    raw = client.export_storage.redis.with_raw_response.get(exp.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 0)
    raw = client.export_storage.redis.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert [s.id for s in raw.data] == [exp.id]
    r = api(server, "GET", "/api/storages/export", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS, password)
    assert [(s["id"], s["type"]) for s in r.json()] == [(exp.id, "redis")]

    # An annotation this storage has not written yet (one an import sync created: an import writes
    # nothing on save) is written by the next export sync, and only it.
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
    redis_server.client(1).set(f"{redis_path}in:more", json.dumps({"data": {"text": "third"},
                                                                    "annotations": [{"result": result}]}))
    assert synced(client.import_storage.redis, imp.id).last_sync_count == 1
    (task,) = [t for t in tasks_of(client, pid) if t.data == {"text": "third"}]
    (added,) = [a["id"] for a in task.annotations]
    assert keys_under(r2, out) == sorted(f"{out}{a}" for a in annotations)
    annotations[added] = (result, task)
    answer, raw = synced_raw(client.export_storage.redis, exp.id)
    assert_no_secrets(raw_json(answer), SECRET_FIELDS, password)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, password)
    assert (raw.data.status, raw.data.last_sync_count) == ("completed", 1), raw.data.traceback
    assert keys_under(r2, out) == sorted(f"{out}{a}" for a in annotations)
    doc = json.loads(r2.get(f"{out}{added}"))
    assert (doc["id"], doc["result"], doc["task"]["id"]) == (added, result, task.id)

    # A target created when annotations exist gets them all at once (LS syncs on creation, here
    # in the background: poll it).
    out2 = f"{redis_path}ann2:"
    exp2 = client.export_storage.redis.create(project=pid, path=out2, **redis_server.storage_args(2))
    assert exp2.can_delete_objects in (None, False)
    got = finished(client.export_storage.redis, exp2.id)
    assert (got.status, got.last_sync_count) == ("completed", 3), got.traceback
    assert keys_under(r2, out2) == sorted(f"{out2}{a}" for a in annotations)

    # can_delete_objects: deleting an annotation deletes its key (stowage; LS never deletes
    # Redis keys) ...
    gone = min(annotations)
    client.annotations.delete(gone)
    assert keys_under(r2, out) == [f"{out}{a}" for a in sorted(annotations) if a != gone]
    # ... only where it is allowed: the other target keeps its copy.
    assert keys_under(r2, out2) == sorted(f"{out2}{a}" for a in annotations)

    assert client.export_storage.redis.delete(exp.id) is None
    assert [s.id for s in client.export_storage.redis.list(project=pid)] == [exp2.id]

    # Without a path, the key is the bare annotation id, as in LS (db 5: only this test writes there).
    exp3 = client.export_storage.redis.create(project=pid, **redis_server.storage_args(5))
    assert exp3.path is None
    got = finished(client.export_storage.redis, exp3.id)
    assert (got.path, got.status, got.last_sync_count) == (None, "completed", 2), got.traceback
    left = max(annotations)
    doc = json.loads(redis_server.client(5).get(str(left)))
    assert (doc["id"], doc["result"]) == (left, annotations[left][0])
