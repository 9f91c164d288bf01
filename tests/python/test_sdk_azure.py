"""Azure Blob import/export driven through the official Label Studio SDK 2.x client, against Azurite
(started by tests/emulators/azure.sh; see the `azure` fixture below).

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md §1.1 fields, §2
sync, §3 resolving/presign, §4 export): a client written against LS must see the same fields,
statuses, counts, task data, resolver links and exported blobs. The only addition is
`azure_endpoint` (Azurite's address), sent through the SDK's `request_options`
(`additional_body_parameters`): without it an `azure` storage may only reach *.blob.core.windows.net.
"""

import base64
import email.utils
import hashlib
import hmac
import json
import os
import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import require
from helpers import (IMAGE_CONFIG, TEXT_CONFIG, api, assert_no_secrets, canon, png, project, raw_json, raw_tasks,
                     tasks_of)
from label_studio_sdk.core.api_error import ApiError

SECRET_FIELDS = ("account_name", "account_key", "sas_token", "connection_string")
# The 11 standard headers of the SharedKey string-to-sign, in order
# (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key).
STANDARD = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
            "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]


@dataclass
class Azurite:
    """The Azurite server of this run, with a small SharedKey client for putting test blobs and
    reading exported ones back (the test venv has no Azure SDK)."""
    endpoint: str
    account: str
    key: str
    container: str

    def storage_args(self) -> dict:
        """Connection fields of an Azure storage, as SDK `create()`/`validate()` keyword arguments."""
        return {"container": self.container, "account_name": self.account, "account_key": self.key,
                "request_options": {"additional_body_parameters": {"azure_endpoint": self.endpoint}}}

    def request(self, method: str, blob: str = None, params: dict = None, body: bytes = b"",
                headers: dict = None) -> requests.Response:
        path = f"/{self.container}" + (f"/{urllib.parse.quote(blob, safe='/~')}" if blob is not None else "")
        url = self.endpoint + path
        headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06", **(headers or {})}
        if method == "PUT":
            headers.setdefault("Content-Type", "application/octet-stream")
        lower = {k.lower(): v for k, v in headers.items()}
        standard = [lower.get(h.lower(), "") for h in STANDARD]
        standard[2] = str(len(body)) if body else ""  # Content-Length, empty when 0
        ms = sorted((k, v) for k, v in lower.items() if k.startswith("x-ms-"))
        resource = f"/{self.account}{urlsplit(url).path}" + "".join(
            f"\n{k}:{v}" for k, v in sorted((params or {}).items()))
        to_sign = "\n".join([method] + standard + [f"{k}:{v}" for k, v in ms] + [resource])
        signature = base64.b64encode(hmac.new(base64.b64decode(self.key), to_sign.encode(),
                                              hashlib.sha256).digest()).decode()
        headers["Authorization"] = f"SharedKey {self.account}:{signature}"
        return requests.request(method, url, params=params, data=body if method == "PUT" else None,
                                headers=headers, timeout=30)

    def put(self, blob: str, body, metadata: dict = None) -> bytes:
        body = body.encode() if isinstance(body, str) else body
        extra = {"x-ms-blob-type": "BlockBlob", **{f"x-ms-meta-{k}": v for k, v in (metadata or {}).items()}}
        r = self.request("PUT", blob, body=body, headers=extra)
        assert r.status_code == 201, (blob, r.status_code, r.text)
        return body

    def get(self, blob: str) -> bytes:
        r = self.request("GET", blob)
        assert r.status_code == 200, (blob, r.status_code, r.text)
        return r.content

    def names_under(self, prefix: str) -> list:
        names, marker = [], None
        while True:
            params = {"restype": "container", "comp": "list", "prefix": prefix}
            if marker:
                params["marker"] = marker
            r = self.request("GET", params=params)
            assert r.status_code == 200, r.text
            root = ET.fromstring(r.content)
            names += [b.findtext("Name") for b in root.iter("Blob")]
            marker = root.findtext("NextMarker")
            if not marker:
                return sorted(names)


@pytest.fixture(scope="session")
def azure():
    """The Azure server of this run (Azurite, started by tests/run.sh). Skips without one, which
    under CI=true is a failure."""
    env = {k: os.environ.get(f"STOWAGE_AZURE_{k}") for k in ("ENDPOINT", "ACCOUNT_NAME", "ACCOUNT_KEY", "CONTAINER")}
    require(all(env.values()), "no Azure server: STOWAGE_AZURE_ENDPOINT etc. unset "
            "(tests/run.sh starts one; or source the env of tests/emulators/azure.sh start DIR)")
    return Azurite(env["ENDPOINT"], env["ACCOUNT_NAME"], env["ACCOUNT_KEY"], env["CONTAINER"])


@pytest.fixture
def az_prefix(azure, request):
    """A fresh blob prefix in the shared test container, named after the test (no trailing slash)."""
    return f"{request.node.name}-{secrets.token_hex(3)}"


def resolver_link(task_id: int, uri: str) -> str:
    # LS: "/tasks/{id}/resolve/?fileuri=" + urlsafe base64 of the URI, '=' padding kept.
    return f"/tasks/{task_id}/resolve/?fileuri={base64.urlsafe_b64encode(uri.encode()).decode()}"


def resolve(server, link: str, **kw) -> requests.Response:
    return api(server, "GET", link, allow_redirects=False, **kw)


def make_images(azure, base: str) -> dict:
    """Blobs the blob import must pick up (key -> bytes), plus ones it must not."""
    images = {
        f"{base}/cat.png": png(4, 3, (200, 120, 40)),
        f"{base}/dog.png": png(2, 2, (90, 90, 90)),
        f"{base}/bird.jpg": png(3, 5, (10, 160, 220)),
        f"{base}/my cat.png": png(1, 1, (0, 0, 0)),  # a space in the name: signing and base64 must cope
    }
    for key, body in images.items():
        azure.put(key, body)
    azure.put(f"{base}/notes.txt", "not an image")           # excluded by regex_filter
    azure.put(f"{base}/sub/deep.png", png(1, 2, (1, 2, 3)))  # only seen with recursive_scan
    azure.put(f"{base}/sub", b"", {"hdi_isfolder": "true"})  # a directory placeholder: never a task
    return images


def test_blob_mode_import_presign_and_resync(server, client, azure, az_prefix):
    base = f"{az_prefix}/images"
    images = make_images(azure, base)
    pid = project(client, "azure blob import", IMAGE_CONFIG)
    args = dict(project=pid, prefix=base + "/", regex_filter=r".*\.(png|jpg)$", use_blob_urls=True,
                presign=True, presign_ttl=5, recursive_scan=False, **azure.storage_args())

    assert client.import_storage.azure.validate(**args) is None

    raw = client.import_storage.azure.with_raw_response.create(title="images", **args)
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    st = raw.data
    assert (st.project, st.type, st.status, st.title) == (pid, "azure", "initialized", "images")
    assert (st.container, st.prefix, st.regex_filter) == (azure.container, base + "/", r".*\.(png|jpg)$")
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (True, True, 5, False)
    assert raw_json(raw)["azure_endpoint"] == azure.endpoint
    assert st.last_sync_count is None

    raw = client.import_storage.azure.with_raw_response.sync(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    st = raw.data
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == len(images)

    # Stored data: one task per blob, `azure-blob://container/key` under the config's first data key.
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"azure-blob://{azure.container}/{k}"} for k in images)
    uri_of = {t["id"]: t["data"]["image"] for t in stored}

    # Served data (resolve_uri defaults to true): the resolver link of each URI.
    tasks = tasks_of(client, pid)
    assert {t.id: t.data for t in tasks} == {i: {"image": resolver_link(i, u)} for i, u in uri_of.items()}

    # The link answers 303 to a read-only blob SAS URL that serves the blob's bytes.
    for t in tasks:
        key = uri_of[t.id].removeprefix(f"azure-blob://{azure.container}/")
        r = resolve(server, t.data["image"])
        assert r.status_code == 303, (r.status_code, r.text)
        assert r.headers["Cache-Control"] == "no-store, max-age=300"
        location = r.headers["Location"]
        assert location.startswith(f"{azure.endpoint}/{azure.container}/{urllib.parse.quote(key)}?"), location
        query = parse_qs(urlsplit(location).query)
        assert (query["sr"], query["sp"], query["sv"]) == (["b"], ["r"], ["2021-08-06"])
        got = requests.get(location, timeout=30)  # plain client, no service token
        assert got.status_code == 200, (location, got.status_code, got.text)
        assert got.content == images[key]

    assert resolve(server, tasks[0].data["image"], headers={"Authorization": None}).status_code == 401

    st = client.import_storage.azure.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == len(images)

    raw = client.import_storage.azure.with_raw_response.get(st.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    got = raw.data
    assert (got.id, got.project, got.status, got.last_sync_count) == (st.id, pid, "completed", 0)
    assert (got.container, got.prefix, got.regex_filter, got.presign_ttl) == (
        azure.container, base + "/", r".*\.(png|jpg)$", 5)

    raw = client.import_storage.azure.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    assert [s.id for s in raw.data] == [st.id]
    r = api(server, "GET", "/api/storages/", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS, azure.key)
    assert [(s["id"], s["type"]) for s in r.json()] == [(st.id, "azure")]

    # PATCH without credentials keeps the stored ones: widening the filter then imports notes.txt.
    raw = client.import_storage.azure.with_raw_response.update(st.id, regex_filter=r".*\.(png|jpg|txt)$", title="all")
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    assert (raw.data.regex_filter, raw.data.title, raw.data.container) == (
        r".*\.(png|jpg|txt)$", "all", azure.container)
    st = client.import_storage.azure.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1)
    assert len(tasks_of(client, pid)) == len(images) + 1

    # Deleting the storage keeps its tasks (LS [obs]).
    assert client.import_storage.azure.delete(st.id) is None
    assert list(client.import_storage.azure.list(project=pid)) == []
    assert len(tasks_of(client, pid)) == len(images) + 1


def test_blob_mode_recursive_proxy(server, client, azure, az_prefix):
    base = f"{az_prefix}/images"
    images = make_images(azure, base)
    pid = project(client, "azure proxy", IMAGE_CONFIG)
    st = client.import_storage.azure.create(
        project=pid, prefix=base, regex_filter=r".*\.png$", use_blob_urls=True, presign=False,
        recursive_scan=True, **azure.storage_args())
    assert (st.presign, st.recursive_scan) == (False, True)
    st = client.import_storage.azure.sync(st.id)
    assert st.status == "completed", st.traceback

    # regex_filter sees the whole key: sub/deep.png in (recursive), bird.jpg, notes.txt and the
    # `sub` directory placeholder out.
    expected = {k: v for k, v in images.items() if k.endswith(".png")}
    expected[f"{base}/sub/deep.png"] = png(1, 2, (1, 2, 3))
    assert st.last_sync_count == len(expected)
    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon({"image": f"azure-blob://{azure.container}/{k}"} for k in expected)

    # presign=false: the service streams the bytes itself (LS proxy mode).
    for t in tasks_of(client, pid):
        uri = next(s["data"]["image"] for s in stored if s["id"] == t.id)
        body = expected[uri.removeprefix(f"azure-blob://{azure.container}/")]
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


def test_folder_placeholder_under_a_prefix_without_slash(server, client, azure, az_prefix):
    # Issue requirement: an Azure "folder" placeholder blob under a prefix without a trailing
    # slash does not become a task.
    azure.put(f"{az_prefix}/data", b"", {"hdi_isfolder": "true"})
    azure.put(f"{az_prefix}/data/dir", b"", {"hdi_isfolder": "true"})
    azure.put(f"{az_prefix}/data/a.json", json.dumps({"text": "only task"}))
    pid = project(client, "azure folders", TEXT_CONFIG)
    st = client.import_storage.azure.create(project=pid, prefix=f"{az_prefix}/data", **azure.storage_args())
    st = client.import_storage.azure.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1), st.traceback
    assert [t["data"] for t in raw_tasks(server, pid)] == [{"text": "only task"}]


def test_json_mode_and_uri_rewriting(server, client, azure, az_prefix):
    base = f"{az_prefix}/tasks"
    cat = f"azure-blob://{azure.container}/{az_prefix}/media/cat.png"
    foreign = "azure-blob://some-other-container/cat.png"  # no storage of the project serves it
    cat_body = azure.put(f"{az_prefix}/media/cat.png", png(4, 4, (1, 2, 3)))
    azure.put(f"{base}/plain.json", json.dumps({"image": cat, "text": "a plain dict", "n": 1}))
    azure.put(f"{base}/array.json", json.dumps([{"image": cat, "text": "array 0"}, {"text": "array 1"}]))
    azure.put(f"{base}/lines.jsonl", '{"text": "line 0"}\n{"text": "line 1"}\n')
    azure.put(f"{base}/foreign.json", json.dumps({"image": foreign, "text": "foreign"}))
    azure.put(f"{base}/deeper/skipped.json", json.dumps({"text": "not recursive"}))
    pid = project(client, "azure json import", """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>""")

    st = client.import_storage.azure.create(project=pid, prefix=base, use_blob_urls=False, **azure.storage_args())
    assert (st.use_blob_urls, st.presign, st.presign_ttl, st.recursive_scan) == (False, True, 1, False)
    st = client.import_storage.azure.sync(st.id)
    assert st.status == "completed", st.traceback
    assert st.last_sync_count == 6

    stored = raw_tasks(server, pid)
    assert canon(t["data"] for t in stored) == canon([
        {"image": cat, "text": "a plain dict", "n": 1},
        {"image": cat, "text": "array 0"}, {"text": "array 1"},
        {"text": "line 0"}, {"text": "line 1"},
        {"image": foreign, "text": "foreign"},
    ])
    tasks = tasks_of(client, pid)
    for t in tasks:
        raw = next(s["data"] for s in stored if s["id"] == t.id)
        want = dict(raw)
        if raw.get("image") == cat:
            want["image"] = resolver_link(t.id, cat)
        assert t.data == want

    with_cat = next(t for t in tasks if t.data.get("text") == "array 0")
    r = resolve(server, with_cat.data["image"])
    assert r.status_code == 303, (r.status_code, r.text)
    assert requests.get(r.headers["Location"], timeout=30).content == cat_body
    assert resolve(server, resolver_link(with_cat.id, foreign)).status_code == 404

    st = client.import_storage.azure.sync(st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)


def test_validate_and_create_refuse_bad_connections(client, azure, az_prefix):
    azure.put(f"{az_prefix}/x.json", "{}")
    pid = project(client, "azure bad", TEXT_CONFIG)
    good = azure.storage_args()
    wrong_key = base64.b64encode(b"0" * 64).decode()
    cases = {
        "wrong key": (dict(good, account_key=wrong_key, prefix=az_prefix),
                      "Cannot connect to Azure container stowage-test with the specified credentials: This request "
                      "is not authorized to perform this operation (AuthorizationFailure, HTTP 403)"),
        "missing container": (dict(good, container="no-such-container", prefix=az_prefix),
                              "Container not found: no-such-container"),
        "empty prefix": (dict(good, prefix=f"{az_prefix}-nothing-here"),
                         f"azure-blob://{azure.container}/{az_prefix}-nothing-here not found."),
    }
    for name, (args, message) in cases.items():
        for call in (client.import_storage.azure.validate, client.import_storage.azure.create):
            with pytest.raises(ApiError) as e:
                call(project=pid, **args)
            assert e.value.status_code == 400, (name, call.__name__, e.value.status_code, e.value.body)
            assert e.value.body["validation_errors"]["non_field_errors"] == [message], (name, e.value.body)
            assert azure.key not in json.dumps(e.value.body) and wrong_key not in json.dumps(e.value.body)
    assert list(client.import_storage.azure.list(project=pid)) == []

    # An export target may be empty (LS only requires the container).
    assert client.export_storage.azure.validate(project=pid, prefix=f"{az_prefix}-nothing-here", **good) is None


def test_export_writes_one_object_per_annotation(server, client, azure, az_prefix):
    azure.put(f"{az_prefix}/in/t.json", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, "azure export", TEXT_CONFIG)
    imp = client.import_storage.azure.create(project=pid, prefix=f"{az_prefix}/in", use_blob_urls=False,
                                             **azure.storage_args())
    assert client.import_storage.azure.sync(imp.id).last_sync_count == 2

    out = f"{az_prefix}/ann"
    raw = client.export_storage.azure.with_raw_response.create(
        project=pid, prefix=out, can_delete_objects=True, title="annotations", **azure.storage_args())
    assert raw.status_code == 201
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    exp = raw.data
    assert (exp.project, exp.type, exp.container, exp.prefix, exp.can_delete_objects, exp.title) == (
        pid, "azure", azure.container, out, True, "annotations")

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        assert ann.result == result
        annotations[ann.id] = (result, task)
        # Every annotation save is exported straight away, at `{prefix}/{annotation id}`.
        assert azure.names_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)

    # An update rewrites the same blob.
    first = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(first, result=result).result == result
    annotations[first] = (result, annotations[first][1])
    assert json.loads(azure.get(f"{out}/{first}"))["result"] == result

    raw = client.export_storage.azure.with_raw_response.sync(exp.id)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    exp = raw.data
    assert (exp.status, exp.last_sync_count) == ("completed", 2), exp.traceback

    assert azure.names_under(out + "/") == sorted(f"{out}/{i}" for i in annotations)
    for ann_id, (result, task) in annotations.items():
        doc = json.loads(azure.get(f"{out}/{ann_id}"))
        assert (doc["id"], doc["result"], doc["project"], doc["was_cancelled"]) == (ann_id, result, pid, False)
        assert (doc["task"]["id"], doc["task"]["data"]) == (task.id, task.data)
        assert "annotations" not in doc["task"]

    raw = client.export_storage.azure.with_raw_response.list(project=pid)
    assert_no_secrets(raw_json(raw), SECRET_FIELDS, azure.key)
    assert [s.id for s in raw.data] == [exp.id]
    r = api(server, "GET", "/api/storages/export", params={"project": pid})
    assert r.status_code == 200
    assert_no_secrets(r.json(), SECRET_FIELDS, azure.key)

    # A target created when annotations exist gets them all at once (LS syncs on creation).
    out2 = f"{az_prefix}/ann2"
    exp2 = client.export_storage.azure.create(project=pid, prefix=out2, **azure.storage_args())
    assert exp2.can_delete_objects in (None, False)
    assert azure.names_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)
    got = client.export_storage.azure.get(exp2.id)
    assert (got.status, got.last_sync_count) == ("completed", 2)

    # can_delete_objects: deleting an annotation deletes its blob, only where it is allowed.
    gone = min(annotations)
    client.annotations.delete(gone)
    assert azure.names_under(out + "/") == [f"{out}/{i}" for i in sorted(annotations) if i != gone]
    assert azure.names_under(out2 + "/") == sorted(f"{out2}/{i}" for i in annotations)

    assert client.export_storage.azure.delete(exp.id) is None
    assert [s.id for s in client.export_storage.azure.list(project=pid)] == [exp2.id]
