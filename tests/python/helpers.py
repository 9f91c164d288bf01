"""Helpers shared by the test_sdk_*.py modules: label configs, sample images, project and task
shortcuts, and raw HTTP calls with the service's token (for what the SDK hides or does not call).
"""

import json
import struct
import time
import zlib

import requests

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>
</View>"""
TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="pos"/><Choice value="neg"/></Choices>
</View>"""


def png(width: int, height: int, rgb: tuple) -> bytes:
    """A small valid PNG, so the 'images' are real images without an imaging dependency."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def project(client, title: str, config: str = TEXT_CONFIG) -> int:
    return client.projects.create(title=title, label_config=config).id


def tasks_of(client, project_id: int) -> list:
    return list(client.tasks.list(project=project_id))


def canon(dicts) -> list:
    """Order-insensitive comparison of task data (LS orders by basename; we don't rely on it)."""
    return sorted(dicts, key=lambda d: json.dumps(d, sort_keys=True))


def api(server, method: str, path: str, timeout: float = 30, **kw) -> requests.Response:
    """`method` on the service's `path` with the API token; `headers` are added to (or, set to
    None, take out) the token's."""
    return requests.request(method, server.url + path, headers={**server.auth, **kw.pop("headers", {})},
                            timeout=timeout, **kw)


def raw_tasks(server, project_id: int) -> list:
    """GET /api/tasks/?resolve_uri=false: task data as stored (e.g. s3:// URIs, not resolver links)."""
    r = api(server, "GET", "/api/tasks/", params={"project": project_id, "page_size": 1000, "resolve_uri": "false"})
    assert r.status_code == 200, r.text
    return r.json()["tasks"]


def raw_json(http_response):
    """The JSON body of an SDK `with_raw_response` call (the SDK model would mask a leak as None)."""
    return http_response.response.json()


def assert_no_secrets(body, fields, secret: str = None):
    """Secrets are write-only (LS `secure_fields`): none of `fields` in any storage response of
    `body`, and the `secret` value (when given) nowhere in it."""
    for item in body if isinstance(body, list) else [body]:
        leaked = [f for f in fields if f in item]
        assert not leaked, f"storage response carries {leaked}: {item}"
    if secret is not None:
        assert secret not in json.dumps(body)


# Label Studio's storage statuses (`StorageInfo.Status`): a sync request answers at once in one of
# them (worker mode: `queued` or `in_progress`; a run that finished meanwhile shows its final one);
# clients poll the storage until it reaches a final one.
SYNC_STATUSES = ("queued", "in_progress", "completed", "completed_with_errors", "failed")
FINAL_STATUSES = ("completed", "completed_with_errors", "failed")
POLL_S = 0.03


def finished(storages, storage_id: int, timeout: float = 120, raw: bool = False):
    """Polls `storages.get(storage_id)` (an SDK import/export storage client) until the status is
    final; returns the final model, or (`raw`) the final `with_raw_response.get` answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = storages.with_raw_response.get(storage_id) if raw else storages.get(storage_id)
        status = (got.data if raw else got).status
        assert status in SYNC_STATUSES, (storage_id, status)
        if status in FINAL_STATUSES:
            return got
        assert time.monotonic() < deadline, f"storage {storage_id} still {status} after {timeout}s"
        time.sleep(POLL_S)


def synced(storages, storage_id: int, timeout: float = 120):
    """Requests a sync with `storages.sync(storage_id)` (e.g. `client.import_storage.s3`), checks
    the immediate answer is a storage status, and returns the final storage once polling shows it
    `completed`, `completed_with_errors` or `failed`."""
    answer = storages.sync(storage_id)
    assert answer.id == storage_id and answer.status in SYNC_STATUSES, answer
    return finished(storages, storage_id, timeout)


def synced_raw(storages, storage_id: int, timeout: float = 120) -> tuple:
    """`synced` through `with_raw_response`: (the sync request's raw answer, the final GET's raw
    answer), so a caller checks both bodies (e.g. for secrets); `.data` is the SDK model."""
    answer = storages.with_raw_response.sync(storage_id)
    assert answer.status_code == 200, answer.status_code
    assert answer.data.id == storage_id and answer.data.status in SYNC_STATUSES, answer.data
    return answer, finished(storages, storage_id, timeout, raw=True)
