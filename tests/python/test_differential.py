"""Differential tests: the same HTTP and SDK calls sent to Label Studio 1.23.2 itself and to
stowage, comparing status codes, response shapes and values.

Ids, timestamps and error uuids are ignored. Every other difference a test lets through is listed
in TOLERATED with its reason: a place where Label Studio answers wrongly and stowage does the right
thing, or where only the wording of a third-party parser differs. A difference not listed fails.
"""

import json
import time

import pytest
from helpers import api

# (what, Label Studio's answer, stowage's answer, why stowage differs)
TOLERATED = {
    "storage list, project not a number": (
        (404, "Not found."),
        (400, 'query parameter "project": invalid digit found in string'),
        "the parameter is malformed, not a missing object: a 400 naming it tells the caller what to fix",
    ),
    "task list without project": (
        (404, "Neither project nor view id specified"),
        (400, 'query parameter "project" is required'),
        "a missing parameter is the caller's error (400), and the body has Label Studio's usual error "
        "shape (Label Studio answers a bare {\"detail\"})",
    ),
    "label config not well-formed": (
        "expat's message (e.g. 'mismatched tag: line 1, column 39')",
        "roxmltree's message, prefixed 'The labeling config is not valid XML: '",
        "another XML parser: same field, same status, other wording",
    ),
    "label config not well-formed, PATCH": (
        (400, "detail only: lxml's message"),
        (400, "validation_errors.label_config, as on create"),
        "Label Studio reports the same problem in two shapes; stowage uses the create shape for both",
    ),
}

# Keys that differ on every call by nature.
VOLATILE = {"id", "created_at", "updated_at", "inner_id", "project"}


def shape(value, volatile=VOLATILE):
    """`value` with volatile keys dropped, recursively, for comparison."""
    if isinstance(value, dict):
        return {k: shape(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [shape(v, volatile) for v in value]
    return value


def both(label_studio, server, method, path, **kw):
    """`(Label Studio's, stowage's)` `(status, JSON body)` for the same call."""
    out = []
    for target in (label_studio, server):
        r = api(target, method, path, **kw)
        try:
            body = r.json()
        except ValueError:
            body = None
        out.append((r.status_code, body))
    return out


def error(answer):
    """`(status, detail, validation_errors)` of an error answer."""
    status, body = answer
    return status, body.get("detail"), body.get("validation_errors")


def new_project(target, title="differential", config="<View><Text name='t' value='$text'/></View>"):
    r = api(target, "POST", "/api/projects", json={"title": title, "label_config": config})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.parametrize("header", [
    None, "Token", "Token a b", "Token wrong", "token wrong", "Bearer abc", "Basic dXNlcjpwYXNz",
])
def test_bad_authorization_headers_get_the_same_401(label_studio, server, header):
    headers = {"Authorization": header} if header is not None else {"Authorization": None}
    ls, st = both(label_studio, server, "GET", "/api/projects", headers=headers)
    assert ls[0] == 401, ls
    assert error(st) == error(ls)


@pytest.mark.parametrize("keyword", ["Token", "token", "TOKEN", "tOkEn"])
def test_the_token_keyword_is_read_in_any_case(label_studio, server, keyword):
    for target in (label_studio, server):
        r = api(target, "GET", "/api/projects", headers={"Authorization": f"{keyword} {target.token}"})
        assert r.status_code == 200, (target.url, r.text)


@pytest.mark.parametrize("path", ["/api/storages/s3", "/api/storages/localfiles", "/api/storages/export/redis"])
def test_a_storage_list_without_project_is_the_same_400(label_studio, server, path):
    ls, st = both(label_studio, server, "GET", path)
    assert error(ls) == (400, "Validation error", {"non_field_errors": ['query parameter "project" is required']})
    assert error(st) == error(ls)


def test_tolerated_query_differences_are_exactly_the_listed_ones(label_studio, server):
    ls, st = both(label_studio, server, "GET", "/api/storages/localfiles?project=abc")
    want_ls, want_st, _ = TOLERATED["storage list, project not a number"]
    assert (ls[0], ls[1]["detail"]) == want_ls
    assert (st[0], st[1]["validation_errors"]["non_field_errors"][0]) == want_st

    ls, st = both(label_studio, server, "GET", "/api/tasks")
    want_ls, want_st, _ = TOLERATED["task list without project"]
    assert (ls[0], ls[1]["detail"]) == want_ls
    assert (st[0], st[1]["validation_errors"]["non_field_errors"][0]) == want_st


def test_a_page_that_is_not_a_number_is_the_same_404(label_studio, server):
    answers = [api(t, "GET", f"/api/tasks?project={new_project(t)}&page=x") for t in (label_studio, server)]
    assert [(r.status_code, r.json()["detail"]) for r in answers] == [(404, "Invalid page.")] * 2


@pytest.mark.parametrize("body, status", [
    ({"data": {"text": "x"}}, 400),
    ({"project": "PROJECT"}, 400),
    ({"project": 999999, "data": {}}, 404),
    ({"project": "one", "data": {}}, 404),
    ({"project": "PROJECT", "data": "text"}, 400),
])
def test_post_tasks_refusals_are_the_same(label_studio, server, body, status):
    answers = []
    for target in (label_studio, server):
        b = {k: (new_project(target) if v == "PROJECT" else v) for k, v in body.items()}
        r = api(target, "POST", "/api/tasks", json=b)
        answers.append(error((r.status_code, r.json())))
    assert answers[0][0] == status, answers
    assert answers[1] == answers[0]


def test_post_tasks_creates_the_same_task(label_studio, server, client, ls_client):
    created = []
    for target, sdk in ((label_studio, ls_client), (server, client)):
        pid = new_project(target)
        r = api(target, "POST", "/api/tasks", json={"project": pid, "data": {"text": "hi"}, "meta": {"m": 1}})
        assert r.status_code == 201, r.text
        created.append(r.json())
        assert r.json()["project"] == pid
        # The SDK's tasks.create sends the same call.
        task = sdk.tasks.create(project=pid, data={"text": "from the SDK"})
        assert task.data == {"text": "from the SDK"}
    assert shape(created[1]) == shape(created[0])
    assert sorted(created[1]) == sorted(created[0])


@pytest.mark.parametrize("config", [
    "<View><Image name='i' value='$image'></View>",
    "<View>",
    "<View><Text name='t' value='$text'/>",
])
def test_a_label_config_that_is_not_xml_is_refused_under_label_config(label_studio, server, config):
    ls, st = both(label_studio, server, "POST", "/api/projects", json={"title": "bad config", "label_config": config})
    assert (ls[0], list(ls[1]["validation_errors"])) == (400, ["label_config"]), ls
    assert (st[0], list(st[1]["validation_errors"])) == (400, ["label_config"]), st
    assert st[1]["validation_errors"]["label_config"][0].startswith("The labeling config is not valid XML: ")

    for target in (label_studio, server):
        pid = new_project(target)
        r = api(target, "PATCH", f"/api/projects/{pid}", json={"label_config": config})
        assert r.status_code == 400, r.text
        r = api(target, "GET", f"/api/projects/{pid}")
        assert r.json()["label_config"] == "<View><Text name='t' value='$text'/></View>"


@pytest.mark.parametrize("config, key", [
    ("<View><Image name='i' value='$photo'/></View>", "photo"),
    ('<View><Header value="Look"/><Image name="i" value="$img"/></View>', "img"),
    ('<View><!-- <Image name="x" value="$old"/> --><Image name="i" value="$new"/></View>', "new"),
])
def test_blob_tasks_show_their_uri_under_the_first_object_tags_variable(label_studio, server, config, key):
    shown = []
    for target in (label_studio, server):
        folder = target.doc_root / f"blob-{key}"
        folder.mkdir(exist_ok=True)
        (folder / "a.jpg").write_bytes(b"A")
        pid = new_project(target, config=config)
        r = api(target, "POST", "/api/storages/localfiles", json={
            "project": pid, "path": str(folder), "use_blob_urls": True, "title": "blob"})
        assert r.status_code == 201, r.text
        storage = r.json()["id"]
        r = api(target, "POST", f"/api/storages/localfiles/{storage}/sync")
        assert r.status_code == 200, r.text
        for _ in range(600):
            s = api(target, "GET", f"/api/storages/localfiles/{storage}").json()
            if s["status"] in ("completed", "completed_with_errors", "failed"):
                break
            time.sleep(0.05)
        assert (s["status"], s["last_sync_count"]) == ("completed", 1), s
        tasks = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        # storage_filename is the file's absolute path on both.
        shown.append([(t["data"], t["storage_filename"].removeprefix(str(target.doc_root))) for t in tasks])
    assert shown[0] == [({key: f"/data/local-files/?d=blob-{key}/a.jpg"}, f"/blob-{key}/a.jpg")]
    assert shown[1] == shown[0]


def test_the_tolerated_list_gives_a_reason_for_each_difference():
    for what, (_, _, why) in TOLERATED.items():
        assert len(why) > 20, what
    print(json.dumps({k: v[2] for k, v in TOLERATED.items()}, indent=2))
