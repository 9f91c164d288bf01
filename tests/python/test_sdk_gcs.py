"""GCS import/export driven through the official Label Studio SDK 2.x client, against
fake-gcs-server (started by tests/run.sh; see the `gcs` fixture in conftest.py).

The flows every object store shares live in object_store.py; this module gives them GCS's
expectations (V4 signed URLs from the service-account key, path-style on the endpoint; the echoed
project and endpoint; Label Studio's messages) and keeps what is GCS's own: malformed credentials,
and a new endpoint needing the key again. The emulator's endpoint (`gcs_endpoint`, not an SDK
argument) travels as an additional body parameter.
"""

from urllib.parse import parse_qs, quote, urlsplit

import object_store as flows
import pytest
from conftest import GCS_KEY, GCS_KEY_EMAIL
from label_studio_sdk.core.api_error import ApiError


def signed_url(gcs, location: str, key: str, ttl: int) -> None:
    """A V4 signed URL (path-style on the endpoint) by the test key's account, valid `ttl` seconds."""
    assert location.startswith(f"{gcs.endpoint}/{gcs.bucket}/{quote(key)}?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == [str(ttl)]
    assert query["X-Goog-Credential"][0].startswith(GCS_KEY_EMAIL + "/")
    assert query["X-Goog-SignedHeaders"] == ["host"]
    assert len(query["X-Goog-Signature"][0]) == 512  # hex of a 2048-bit RSA signature


def connection_fields(gcs, storage, body: dict) -> None:
    """The project id and the endpoint are echoed."""
    assert (storage.google_project_id, body["gcs_endpoint"]) == (gcs.project, gcs.endpoint)


def test_blob_mode_import_signed_urls_and_resync(server, client, gcs, key_prefix):
    pid, storage, count = flows.blob_import_presign_and_resync(server, client, gcs, key_prefix, signed_url,
                                                               connection_fields)
    # A new endpoint needs the key again (stored secrets never follow a storage elsewhere).
    moved = {"additional_body_parameters": {"gcs_endpoint": gcs.endpoint.replace("127.0.0.1", "localhost")}}
    with pytest.raises(ApiError) as e:
        client.import_storage.gcs.update(storage, request_options=moved)
    assert e.value.status_code == 400
    assert "google_application_credentials" in e.value.body["validation_errors"]
    flows.deleting_the_storage_keeps_its_tasks(client, gcs, pid, storage, count)


def test_blob_mode_recursive_proxy(server, client, gcs, key_prefix):
    flows.blob_recursive_proxy(server, client, gcs, key_prefix)


def test_json_mode_and_uri_rewriting(server, client, gcs, key_prefix):
    flows.json_mode_and_uri_rewriting(server, client, gcs, key_prefix, signed_url)


def test_validate_and_create_refuse_bad_connections(client, gcs, key_prefix):
    flows.validate_and_create_refuse_bad_connections(
        client, gcs, key_prefix,
        missing=("no-such-bucket-stowage", "Cannot find bucket no-such-bucket-stowage in GCS"),
        empty_message=lambda prefix: f"No blobs found in {gcs.bucket}/{prefix} or prefix doesn't exist",
        cases={"malformed key": (
            dict(gcs.storage_args(), prefix=key_prefix, google_application_credentials=GCS_KEY[:400]),
            flows.MessageStart("Google Application Credentials must be valid JSON string. unexpected end of input"))},
        leaks=("PRIVATE KEY",))


def test_export_writes_one_object_per_annotation(server, client, gcs, key_prefix):
    flows.export_writes_one_object_per_annotation(server, client, gcs, key_prefix, connection_fields)
