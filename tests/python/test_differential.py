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
    "the same folder connected twice": (
        "4 tasks: the second storage creates every task again",
        "2 tasks: the second storage creates none, its meta.tasks_already_imported is 2",
        "a script that re-runs 'connect + sync' must not double the project's tasks; tasks stay "
        "unique per project and object",
    ),
    "annotation timestamps from a task file": (
        "created_at and updated_at are the import time",
        "created_at and updated_at are the file's",
        "an imported annotation keeps when it was made (Label Studio's serializer treats both as read-only)",
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


def local_storage(target, pid, folder, **fields):
    """Creates a local-files import storage of `folder` in project `pid`; returns its id."""
    r = api(target, "POST", "/api/storages/localfiles", json={"project": pid, "path": str(folder), **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def synced(target, storage):
    """Syncs local-files storage `storage` and waits (at most 30 s) for the run to end; its answer."""
    r = api(target, "POST", f"/api/storages/localfiles/{storage}/sync")
    assert r.status_code == 200, r.text
    for _ in range(600):
        s = api(target, "GET", f"/api/storages/localfiles/{storage}").json()
        if s["status"] in ("completed", "completed_with_errors", "failed"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"{target.url}: storage {storage} still syncing: {s}")


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
        s = synced(target, storage)
        assert (s["status"], s["last_sync_count"]) == ("completed", 1), s
        tasks = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        # storage_filename is the file's absolute path on both.
        shown.append([(t["data"], t["storage_filename"].removeprefix(str(target.doc_root))) for t in tasks])
    assert shown[0] == [({key: f"/data/local-files/?d=blob-{key}/a.jpg"}, f"/blob-{key}/a.jpg")]
    assert shown[1] == shown[0]


def test_the_same_folder_connected_twice_imports_it_once_on_stowage(label_studio, server):
    counts = []
    for target in (label_studio, server):
        folder = target.doc_root / "twice"
        folder.mkdir(exist_ok=True)
        for name in ("a.jpg", "b.jpg"):
            (folder / name).write_bytes(name.encode())
        pid = new_project(target, config="<View><Image name='i' value='$image'/></View>")
        runs = [synced(target, local_storage(target, pid, folder, use_blob_urls=True)) for _ in range(2)]
        assert [(s["status"], s["last_sync_count"]) for s in runs[:1]] == [("completed", 2)]
        tasks = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        counts.append((runs[1]["last_sync_count"], runs[1]["meta"].get("tasks_already_imported"), len(tasks)))
    assert counts == [(2, None, 4), (0, 2, 2)]
    assert TOLERATED["the same folder connected twice"][0].startswith("4 tasks")


def test_annotations_in_a_task_file_are_imported_alike(label_studio, server):
    imported = []
    for target in (label_studio, server):
        me = api(target, "GET", "/api/current-user/whoami").json()["id"]
        result = [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["yes"]}}]
        task = {"data": {"text": "annotated"},
                "annotations": [
                    {"result": result, "completed_by": me, "ground_truth": True, "lead_time": 12.5,
                     "created_at": "2021-03-09T21:52:49.513742Z", "updated_at": "2021-03-09T22:16:08.746926Z"},
                    {"result": [], "was_cancelled": True, "completed_by": me}],
                "predictions": [{"result": result, "score": 0.25, "model_version": "v7"}]}
        folder = target.doc_root / "annotated"
        folder.mkdir(exist_ok=True)
        (folder / "task.json").write_text(json.dumps(task))
        config = "<View><Text name='t' value='$text'/><Choices name='c' toName='t'><Choice value='yes'/></Choices></View>"
        pid = new_project(target, config=config)
        s = synced(target, local_storage(target, pid, folder, use_blob_urls=False))
        assert (s["status"], s["last_sync_count"]) == ("completed", 1), s
        [t] = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        annotations = api(target, "GET", f"/api/tasks/{t['id']}/annotations").json()
        fields = ("result", "was_cancelled", "ground_truth", "lead_time", "completed_by")
        imported.append((
            [t[k] for k in ("total_annotations", "cancelled_annotations", "total_predictions")],
            [[a[k] if k != "completed_by" else a[k] == me for k in fields] for a in annotations],
            [a["created_at"] == "2021-03-09T21:52:49.513742Z" for a in annotations],
        ))
    counts, annotations, kept_time = imported[1]
    assert (counts, annotations) == imported[0][:2]
    # Both list the annotation, not the cancelled one (counted in cancelled_annotations).
    assert counts == [1, 1, 1]
    assert len(annotations) == 1
    assert annotations[0] == [[{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["yes"]}}],
                              False, True, 12.5, True]
    # Tolerated: "annotation timestamps from a task file".
    assert (imported[0][2], kept_time) == ([False], [True])


def test_ground_truth_defaults_differ_between_project_import_and_storage_sync(label_studio, server):
    """Label Studio's project import takes an annotation without `ground_truth` as ground truth;
    its storage sync does not. stowage answers the same on both paths."""
    task = {"data": {"text": "gt"}, "annotations": [{"result": []}, {"result": [], "ground_truth": False}]}
    answers = []
    for target in (label_studio, server):
        pid = new_project(target)
        r = api(target, "POST", f"/api/projects/{pid}/import", json=[task])
        assert r.status_code == 201, r.text
        [imported] = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        folder = target.doc_root / "ground-truth"
        folder.mkdir(exist_ok=True)
        (folder / "task.json").write_text(json.dumps(task))
        pid = new_project(target)
        s = synced(target, local_storage(target, pid, folder, use_blob_urls=False))
        assert (s["status"], s["last_sync_count"]) == ("completed", 1), s
        [synced_task] = api(target, "GET", "/api/tasks", params={"project": pid}).json()["tasks"]
        answers.append([[a["ground_truth"] for a in api(target, "GET", f"/api/tasks/{t['id']}/annotations").json()]
                        for t in (imported, synced_task)])
    assert answers[1] == answers[0] == [[True, False], [False, False]]


def test_the_tolerated_list_gives_a_reason_for_each_difference():
    for what, (_, _, why) in TOLERATED.items():
        assert len(why) > 20, what
    print(json.dumps({k: v[2] for k, v in TOLERATED.items()}, indent=2))
