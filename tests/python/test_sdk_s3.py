"""S3 import/export driven through the official Label Studio SDK 2.x client, against a real
S3 server (garage, started by tests/run.sh; see the `s3` fixture in conftest.py).

The flows every object store shares live in object_store.py; this module gives them S3's
expectations (SigV4 presigned URLs, the echoed region and endpoint, Label Studio's messages) and
keeps what is S3's own: stored secrets never follow a change of endpoint or bucket.
"""

from urllib.parse import parse_qs, urlsplit

import object_store as flows
import pytest
from helpers import synced
from label_studio_sdk.core.api_error import ApiError


def signed_url(s3, location: str, key: str, ttl: int) -> None:
    """A SigV4 presigned GET on the endpoint, valid `ttl` seconds."""
    assert location.startswith(s3.endpoint + "/"), location
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(ttl)]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def connection_fields(s3, storage, body: dict) -> None:
    """The region and endpoint are echoed."""
    assert (storage.region_name, storage.s3endpoint) == (s3.region, s3.endpoint)


def test_blob_mode_import_presign_and_resync(server, client, s3, key_prefix):
    pid, storage, count = flows.blob_import_presign_and_resync(server, client, s3, key_prefix, signed_url,
                                                               connection_fields)
    flows.deleting_the_storage_keeps_its_tasks(client, s3, pid, storage, count)


def test_blob_mode_recursive_proxy(server, client, s3, key_prefix):
    flows.blob_recursive_proxy(server, client, s3, key_prefix)


def test_json_mode_and_uri_rewriting(server, client, s3, key_prefix):
    flows.json_mode_and_uri_rewriting(server, client, s3, key_prefix, signed_url)


def test_validate_and_create_refuse_bad_connections(client, s3, key_prefix):
    good = s3.storage_args()
    pid, good = flows.validate_and_create_refuse_bad_connections(
        client, s3, key_prefix,
        missing=("no-such-bucket-stowage", "Cannot find bucket no-such-bucket-stowage in S3"),
        empty_message=lambda prefix: f"s3://{s3.bucket}/{prefix} not found.",
        cases={"wrong secret": (dict(good, aws_secret_access_key="0" * 64, prefix=key_prefix), None)})

    # Stored secrets never follow a connection change (reference §8.4): a new endpoint or bucket
    # without the credentials re-entered is refused, with them it is accepted.
    st = client.import_storage.s3.create(project=pid, prefix=key_prefix, **good)
    for change in ({"s3endpoint": s3.endpoint.replace("127.0.0.1", "localhost")}, {"bucket": "some-other-bucket"}):
        with pytest.raises(ApiError) as e:
            client.import_storage.s3.update(st.id, **change)
        assert e.value.status_code == 400, (change, e.value.status_code, e.value.body)
    st = client.import_storage.s3.update(st.id, **dict(good, s3endpoint=s3.endpoint.replace("127.0.0.1", "localhost")))
    assert st.s3endpoint == s3.endpoint.replace("127.0.0.1", "localhost")
    st = synced(client.import_storage.s3, st.id)
    assert (st.status, st.last_sync_count) == ("completed", 1), st.traceback
    client.import_storage.s3.delete(st.id)


def test_export_writes_one_object_per_annotation(server, client, s3, key_prefix):
    flows.export_writes_one_object_per_annotation(server, client, s3, key_prefix, connection_fields)
