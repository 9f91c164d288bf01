"""Azure Blob import/export driven through the official Label Studio SDK 2.x client, against Azurite
(started by tests/emulators/azure.sh; see the `azure` fixture in conftest.py).

The flows every object store shares live in object_store.py; this module gives them Azure's
expectations (read-only blob SAS URLs, the echoed endpoint, Label Studio's messages) and keeps
what is Azure's own: folder placeholder blobs (`hdi_isfolder`) under a prefix without a slash.
The only addition to Label Studio's fields is `azure_endpoint` (Azurite's address), sent through
the SDK's `request_options` (`additional_body_parameters`): without it an `azure` storage may only
reach *.blob.core.windows.net.
"""

import base64
import json
from urllib.parse import parse_qs, quote, urlsplit

import object_store as flows
from helpers import TEXT_CONFIG, project, raw_tasks, synced


def signed_url(azure, location: str, key: str, ttl: int) -> None:
    """A read-only blob service SAS URL (Azurite checks its expiry, not shown in the query)."""
    assert location.startswith(f"{azure.endpoint}/{azure.container}/{quote(key)}?"), location
    query = parse_qs(urlsplit(location).query)
    assert (query["sr"], query["sp"], query["sv"]) == (["b"], ["r"], ["2021-08-06"])


def connection_fields(azure, storage, body: dict) -> None:
    """The endpoint is echoed."""
    assert body["azure_endpoint"] == azure.endpoint


def test_blob_mode_import_presign_and_resync(server, client, azure, key_prefix):
    pid, storage, count = flows.blob_import_presign_and_resync(server, client, azure, key_prefix, signed_url,
                                                               connection_fields)
    flows.deleting_the_storage_keeps_its_tasks(client, azure, pid, storage, count)


def test_blob_mode_recursive_proxy(server, client, azure, key_prefix):
    flows.blob_recursive_proxy(server, client, azure, key_prefix)


def test_folder_placeholder_under_a_prefix_without_slash(server, client, azure, key_prefix):
    # Issue requirement: an Azure "folder" placeholder blob under a prefix without a trailing
    # slash does not become a task.
    azure.put_folder(f"{key_prefix}/data")
    azure.put_folder(f"{key_prefix}/data/dir")
    azure.put(f"{key_prefix}/data/a.json", json.dumps({"text": "only task"}))
    pid = project(client, "azure folders", TEXT_CONFIG)
    st = client.import_storage.azure.create(project=pid, prefix=f"{key_prefix}/data", **azure.storage_args())
    st = synced(client.import_storage.azure, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1), st.traceback
    assert [t["data"] for t in raw_tasks(server, pid)] == [{"text": "only task"}]


def test_json_mode_and_uri_rewriting(server, client, azure, key_prefix):
    flows.json_mode_and_uri_rewriting(server, client, azure, key_prefix, signed_url)


def test_validate_and_create_refuse_bad_connections(client, azure, key_prefix):
    wrong_key = base64.b64encode(b"0" * 64).decode()
    flows.validate_and_create_refuse_bad_connections(
        client, azure, key_prefix,
        missing=("no-such-container", "Container not found: no-such-container"),
        empty_message=lambda prefix: f"azure-blob://{azure.container}/{prefix} not found.",
        cases={"wrong key": (
            dict(azure.storage_args(), account_key=wrong_key, prefix=key_prefix),
            "Cannot connect to Azure container stowage-test with the specified credentials: This request "
            "is not authorized to perform this operation (AuthorizationFailure, HTTP 403)")},
        leaks=(wrong_key,))


def test_export_writes_one_object_per_annotation(server, client, azure, key_prefix):
    flows.export_writes_one_object_per_annotation(server, client, azure, key_prefix, connection_fields)
