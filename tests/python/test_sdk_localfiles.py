"""Local-files import/export driven through the official Label Studio SDK 2.x client.

Expected values follow Label Studio 1.23.2 (shared/reference/ls-storage-api.md): a client
written against LS must see the same task data, statuses, counts and exported files.
"""

import json
import time
from pathlib import Path
from urllib.parse import quote

import requests
from helpers import FINAL_STATUSES, IMAGE_CONFIG, TEXT_CONFIG, api, canon, finished, png, project, synced, tasks_of


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def file_url(server, path: Path) -> str:
    # LS: "/data/local-files/?d=" + quote(path relative to the document root), '/' kept.
    return "/data/local-files/?d=" + quote(str(path.relative_to(server.doc_root)))


def make_images(d: Path) -> dict:
    """Images the import must pick up (name -> bytes), plus files it must not."""
    images = {
        "cat.png": png(4, 3, (200, 120, 40)),
        "dog.png": png(2, 2, (90, 90, 90)),
        "bird.jpg": png(3, 5, (10, 160, 220)),  # extension is what the filter sees
        "my cat.png": png(1, 1, (0, 0, 0)),     # needs percent-quoting in the URL
    }
    for name, body in images.items():
        write(d / name, body)
    write(d / "notes.txt", "not an image")             # excluded by regex_filter
    write(d / "sub" / "deep.png", png(1, 2, (1, 2, 3)))  # only seen with recursive_scan
    return images


# The blob URL is stored under "$undefined$" and, like LS, shown under the first data key of
# the label config ("$image" -> "image"); reference §2 "use_blob_urls=true".
def test_blob_mode_import_and_resync(server, client, workdir):
    images_dir = workdir / "images"
    images = make_images(images_dir)
    pid = project(client, "blob import", IMAGE_CONFIG)

    st = client.import_storage.local.create(
        project=pid, path=str(images_dir) + "/", use_blob_urls=True,
        regex_filter=r".*\.(png|jpg)$", recursive_scan=False, title="images")
    assert st.project == pid
    assert st.path == str(images_dir)  # trailing slash normalised away, as in LS
    assert st.status == "initialized"
    assert st.type == "localfiles"

    st = synced(client.import_storage.local, st.id)
    assert st.status == "completed"
    assert st.last_sync_count == len(images)

    tasks = tasks_of(client, pid)
    assert len(tasks) == len(images)
    assert canon(t.data for t in tasks) == canon(
        {"image": file_url(server, images_dir / name)} for name in images)
    assert any(t.data["image"].endswith("/my%20cat.png") for t in tasks)

    st = synced(client.import_storage.local, st.id)
    assert st.status == "completed"
    assert st.last_sync_count == 0
    assert len(tasks_of(client, pid)) == len(images)

    got = client.import_storage.local.get(st.id)
    assert (got.id, got.project, got.status, got.last_sync_count) == (st.id, pid, "completed", 0)
    assert (got.path, got.use_blob_urls, got.regex_filter, got.recursive_scan) == (
        str(images_dir), True, r".*\.(png|jpg)$", False)
    assert [s.id for s in client.import_storage.local.list(project=pid)] == [st.id]


def test_blob_mode_recursive_scan(server, client, workdir):
    images_dir = workdir / "images"
    images = make_images(images_dir)
    pid = project(client, "blob recursive", IMAGE_CONFIG)

    st = client.import_storage.local.create(
        project=pid, path=str(images_dir), use_blob_urls=True,
        regex_filter=r".*\.png$", recursive_scan=True)
    st = synced(client.import_storage.local, st.id)
    assert st.status == "completed"

    # regex_filter matches the basename (LS localfiles), so sub/deep.png is in, bird.jpg out.
    expected = [images_dir / n for n in images if n.endswith(".png")] + [images_dir / "sub/deep.png"]
    assert st.last_sync_count == len(expected)
    assert canon(t.data for t in tasks_of(client, pid)) == canon(
        {"image": file_url(server, p)} for p in expected)


def test_json_mode_dict_full_array_jsonl(server, client, workdir):
    d = workdir / "tasks"
    ann_result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": ["pos"]}}]
    pred_result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                    "value": {"choices": ["neg"]}}]
    write(d / "plain.json", json.dumps({"text": "a plain dict", "n": 1, "tags": ["x", "y"]}))
    write(d / "full.json", json.dumps({
        "data": {"text": "with predictions and annotations"},
        "predictions": [{"result": pred_result, "score": 0.5, "model_version": "v1"}],
        "annotations": [{"result": ann_result}],
    }))
    write(d / "array.json", json.dumps([{"text": "array 0"}, {"text": "array 1"}, {"text": "array 2"}]))
    write(d / "lines.jsonl", '{"text": "line 0"}\n{"text": "line 1", "meta_x": true}\n')
    pid = project(client, "json import", TEXT_CONFIG)

    st = client.import_storage.local.create(project=pid, path=str(d), use_blob_urls=False)
    st = synced(client.import_storage.local, st.id)
    assert st.status == "completed"
    assert st.last_sync_count == 7

    tasks = tasks_of(client, pid)
    assert canon(t.data for t in tasks) == canon([
        {"text": "a plain dict", "n": 1, "tags": ["x", "y"]},
        {"text": "with predictions and annotations"},
        {"text": "array 0"}, {"text": "array 1"}, {"text": "array 2"},
        {"text": "line 0"}, {"text": "line 1", "meta_x": True},
    ])
    full = next(t for t in tasks if t.data == {"text": "with predictions and annotations"})
    assert [a["result"] for a in full.annotations] == [ann_result]
    assert [(p.result, p.score, p.model_version) for p in full.predictions] == [(pred_result, 0.5, "v1")]
    others = [t for t in tasks if t.id != full.id]
    assert all(not t.annotations and not t.predictions for t in others)

    st = synced(client.import_storage.local, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 0)
    assert len(tasks_of(client, pid)) == 7


def test_export_writes_one_file_per_annotation(server, client, workdir):
    src, out = workdir / "tasks", workdir / "export"
    out.mkdir()
    write(src / "t.json", json.dumps([{"text": "first"}, {"text": "second"}]))
    pid = project(client, "export", TEXT_CONFIG)
    imp = client.import_storage.local.create(project=pid, path=str(src), use_blob_urls=False)
    assert synced(client.import_storage.local, imp.id).last_sync_count == 2

    exp = client.export_storage.local.create(project=pid, path=str(out))
    assert exp.project == pid and exp.type == "localfiles"
    # Creating a target queues its first export sync (nothing to write yet): let it finish.
    first_sync = finished(client.export_storage.local, exp.id)
    assert (first_sync.status, first_sync.last_sync_count) == ("completed", 0), first_sync.traceback

    annotations = {}
    for i, task in enumerate(sorted(tasks_of(client, pid), key=lambda t: t.id)):
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                   "value": {"choices": [["pos", "neg"][i]]}}]
        ann = client.annotations.create(task.id, result=result)
        assert ann.result == result
        annotations[ann.id] = (result, task)

    # Every annotation was written when it was saved: the (incremental) sync writes none again.
    exp = synced(client.export_storage.local, exp.id)
    assert exp.status == "completed", exp.traceback
    assert exp.last_sync_count == 0

    assert sorted(p.name for p in out.iterdir()) == sorted(str(i) for i in annotations)
    for ann_id, (result, task) in annotations.items():
        text = (out / str(ann_id)).read_text()
        assert text.startswith('{\n  "')  # indent=2, as LS writes local files
        doc = json.loads(text)
        assert doc["id"] == ann_id
        assert doc["result"] == result
        assert doc["task"]["id"] == task.id
        assert doc["task"]["data"] == task.data
        assert "annotations" not in doc["task"]

    # An update is written when it is saved, so the next sync has nothing to write either.
    changed = min(annotations)
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]
    assert client.annotations.update(changed, result=result).result == result
    assert json.loads((out / str(changed)).read_text())["result"] == result
    exp = synced(client.export_storage.local, exp.id)
    assert (exp.status, exp.last_sync_count) == ("completed", 0), exp.traceback

    # An annotation changed since this storage last wrote it (here: its write on save failed, a
    # non-empty directory standing where its file goes) is written by the next sync, and only it.
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
    target = out / str(changed)
    target.unlink()
    write(target / "blocker", "the annotation's file cannot be written here")
    try:
        assert client.annotations.update(changed, result=result).result == result
        assert (target / "blocker").is_file()
    finally:
        (target / "blocker").unlink()
        target.rmdir()
    exp = synced(client.export_storage.local, exp.id)
    assert (exp.status, exp.last_sync_count) == ("completed", 1), exp.traceback
    assert json.loads((out / str(changed)).read_text())["result"] == result
    assert sorted(p.name for p in out.iterdir()) == sorted(str(i) for i in annotations)


def test_local_files_url_serves_bytes(server, client, workdir):
    images_dir = workdir / "images"
    body = png(16, 16, (255, 0, 0))
    write(images_dir / "red.png", body)
    write(workdir / "private" / "secret.txt", "outside every storage")
    pid = project(client, "serve files", IMAGE_CONFIG)
    st = client.import_storage.local.create(project=pid, path=str(images_dir), use_blob_urls=True)
    assert synced(client.import_storage.local, st.id).last_sync_count == 1

    (task,) = tasks_of(client, pid)
    url = task.data["image"]
    assert url == file_url(server, images_dir / "red.png")

    r = api(server, "GET", url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == body
    assert r.headers["Content-Length"] == str(len(body))

    assert requests.get(server.url + url, timeout=10).status_code == 401

    for d in ("../..", "../../etc/passwd", f"{workdir.name}/private/secret.txt"):
        r = api(server, "GET", "/data/local-files/", params={"d": d}, timeout=10)
        assert 400 <= r.status_code < 500, (d, r.status_code, r.text)
        assert b"outside every storage" not in r.content


def test_sync_answers_at_once_and_runs_in_the_background(server, client, workdir):
    """Label Studio's worker mode: the sync request answers `queued` or `in_progress` at once, the
    run goes on in the background, and polling the storage shows its progress in `meta`."""
    files = 20_000
    d = workdir / "many"
    d.mkdir()
    for i in range(files):
        (d / f"{i:05}.txt").write_bytes(b"x")
    pid = project(client, "background sync", TEXT_CONFIG)
    st = client.import_storage.local.create(project=pid, path=str(d), use_blob_urls=True)
    assert st.status == "initialized"

    answer = client.import_storage.local.sync(st.id)
    assert answer.id == st.id
    assert answer.status in ("queued", "in_progress"), (answer.status, answer.meta)

    listed = []  # meta.objects_listed seen while the run was not finished
    deadline = time.monotonic() + 300
    while True:
        got = client.import_storage.local.get(st.id)
        if got.status in FINAL_STATUSES:
            break
        assert got.status in ("queued", "in_progress"), got.status
        n = (got.meta or {}).get("objects_listed")
        if n is not None:
            listed.append(n)
        assert time.monotonic() < deadline, f"still {got.status} after 300s: {got.meta}"
        time.sleep(0.02)
    assert len(set(listed)) >= 2, f"objects_listed seen before completion: {sorted(set(listed))}"
    assert listed == sorted(listed), "objects_listed never goes down"
    assert all(0 <= n <= files for n in listed), listed

    assert got.status == "completed", got.traceback
    assert got.last_sync_count == files
    assert got.meta["objects_listed"] == files
    r = api(server, "GET", "/api/tasks/", params={"project": pid, "page_size": 1})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == files
