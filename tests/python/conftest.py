"""Fixtures: one real `stowage serve` process per test session, driven over HTTP.

Env: STOWAGE_BIN (default target/release/stowage), STOWAGE_TEST_ADAPTERS (default
target/test-adapters); for the S3 tests STOWAGE_S3_ENDPOINT, STOWAGE_S3_KEY_ID, STOWAGE_S3_SECRET,
STOWAGE_S3_BUCKET, STOWAGE_S3_REGION (written by tests/emulators/garage.sh, exported by
tests/run.sh); for the Redis tests STOWAGE_REDIS_HOST, STOWAGE_REDIS_PORT, STOWAGE_REDIS_PASSWORD
(written by tests/emulators/redis.sh); for the GCS tests STOWAGE_GCS_ENDPOINT, STOWAGE_GCS_PROJECT,
STOWAGE_GCS_BUCKET (written by tests/emulators/gcs.sh); for the Azure tests STOWAGE_AZURE_ENDPOINT,
STOWAGE_AZURE_ACCOUNT_NAME, STOWAGE_AZURE_ACCOUNT_KEY, STOWAGE_AZURE_CONTAINER (written by
tests/emulators/azure.sh). The object-store fixtures (`s3`, `gcs`, `azure`) share the
`object_store.ObjectStore` interface the flows of object_store.py run on. Under CI=true a missing
binary/adapter/storage server, or any skip, is a failure: CI must never go green by not running the
tests.
"""

import base64
import contextlib
import email.utils
import hashlib
import hmac
import os
import secrets
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from object_store import ObjectStore

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("STOWAGE_BIN", ROOT / "target/release/stowage"))
ADAPTERS = Path(os.environ.get("STOWAGE_TEST_ADAPTERS", ROOT / "target/test-adapters"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# First start compiles the wasm components (cold cache); allow for it on a 2-core box.
START_TIMEOUT_S = 120


def require(ok: bool, reason: str) -> None:
    if not ok:
        (pytest.fail if IN_CI else pytest.skip)(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (not allowed): {report.longrepr}"


@dataclass
class Server:
    url: str
    token: str
    doc_root: Path
    data_dir: Path
    log: Path
    proc: subprocess.Popen

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Token {self.token}"}

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_server(tmp: Path, adapters: Path = ADAPTERS, env: dict = None):
    """A `stowage serve` in `tmp` (document root `tmp/root`, data `tmp/data`) loading the
    adapters in `adapters`, with `env` added to its environment; stopped on exit."""
    require(BIN.is_file(), f"stowage binary not found at {BIN} (run tests/run.sh)")
    require(any(adapters.glob("*.wasm")), f"no adapters in {adapters} (run adapters/build.sh)")
    doc_root, data_dir = tmp / "root", tmp / "data"
    doc_root.mkdir()
    data_dir.mkdir()
    log = tmp / "server.log"
    token = secrets.token_hex(20)
    url = f"http://127.0.0.1:{_free_port()}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--bind", url.removeprefix("http://"),
             "--data-dir", str(data_dir), "--adapters-dir", str(adapters),
             "--document-root", str(doc_root),
             # The test S3 server listens on 127.0.0.1, a reserved address adapters may not
             # reach by default (SSRF protection).
             "--allow-private-addresses"],
            env={**os.environ, "STOWAGE_TOKEN": token, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
        )
    srv = Server(url, token, doc_root, data_dir, log, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"stowage exited with {proc.returncode}:\n{srv.log_tail()}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"stowage not healthy after {START_TIMEOUT_S}s:\n{srv.log_tail()}")
            time.sleep(0.05)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("stowage")) as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server):
    from label_studio_sdk.client import LabelStudio

    return LabelStudio(base_url=server.url, api_key=server.token)


@pytest.fixture(scope="session")
def label_studio():
    """Label Studio 1.23.2 itself, the reference of test_differential.py: the server of
    tests/emulators/label-studio.sh (started by tests/run.sh; env STOWAGE_LS_URL, STOWAGE_LS_TOKEN,
    STOWAGE_LS_FILES, its local-files document root). Skips without one, which under CI=true is a
    failure."""
    url, token, files = (os.environ.get(f"STOWAGE_LS_{k}") for k in ("URL", "TOKEN", "FILES"))
    require(bool(url and token and files), "no Label Studio: STOWAGE_LS_URL etc. unset (tests/run.sh "
            "starts one; or source the env of tests/emulators/label-studio.sh start DIR)")
    return Server(url, token, Path(files), None, None, None)


@pytest.fixture(scope="session")
def ls_client(label_studio):
    from label_studio_sdk.client import LabelStudio

    return LabelStudio(base_url=label_studio.url, api_key=label_studio.token)


@pytest.fixture
def workdir(server, request):
    """A fresh directory under the document root, named after the test."""
    d = server.doc_root / request.node.name
    d.mkdir()
    return d


@dataclass
class S3(ObjectStore):
    """The S3 server, with a boto3 client for putting test objects and reading exports back."""
    endpoint: str
    key_id: str
    secret_key: str
    bucket: str
    region: str
    client: object  # boto3 S3 client

    type = "s3"
    scheme = "s3"
    bucket_field = "bucket"
    secret_fields = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

    @property
    def secret(self) -> str:
        return self.secret_key

    def storage_args(self, signed: bool = False) -> dict:
        """Connection fields of an S3 storage, as SDK `create()` keyword arguments (always
        credentialed: `signed` changes nothing)."""
        return {"bucket": self.bucket, "aws_access_key_id": self.key_id,
                "aws_secret_access_key": self.secret_key, "region_name": self.region,
                "s3endpoint": self.endpoint}

    def put(self, key: str, body, metadata: dict = None) -> bytes:
        body = body.encode() if isinstance(body, str) else body
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {})
        return body

    def get(self, key: str) -> tuple:
        got = self.client.get_object(Bucket=self.bucket, Key=key)
        return got["Body"].read(), got.get("ContentType", "")

    def keys_under(self, prefix: str) -> list:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3():
    """The S3 server of this run (garage, started by tests/run.sh). Skips without one, which
    under CI=true is a failure."""
    env = {k: os.environ.get(f"STOWAGE_S3_{k}") for k in ("ENDPOINT", "KEY_ID", "SECRET", "BUCKET", "REGION")}
    require(all(env.values()), "no S3 server: STOWAGE_S3_ENDPOINT etc. unset "
            "(tests/run.sh starts one; or source the env of tests/emulators/garage.sh start DIR)")
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=env["ENDPOINT"], region_name=env["REGION"],
        aws_access_key_id=env["KEY_ID"], aws_secret_access_key=env["SECRET"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    return S3(env["ENDPOINT"], env["KEY_ID"], env["SECRET"], env["BUCKET"], env["REGION"], client)


@pytest.fixture
def key_prefix(request):
    """A fresh key prefix in a shared test bucket, named after the test (no trailing slash)."""
    return f"{request.node.name}-{secrets.token_hex(3)}"


@dataclass
class Redis:
    host: str
    port: str
    password: str

    def client(self, db: int):
        """A `redis` client on database `db` (str values), for loading tasks and reading exports."""
        import redis

        return redis.Redis(host=self.host, port=int(self.port), password=self.password, db=db,
                           decode_responses=True)

    def storage_args(self, db: int) -> dict:
        """Connection fields of a Redis storage, as SDK `create()` keyword arguments."""
        return {"host": self.host, "port": self.port, "password": self.password, "db": db}


@pytest.fixture(scope="session")
def redis_server():
    """The Redis server of this run (redis-server, started by tests/run.sh). Skips without one,
    which under CI=true is a failure."""
    env = {k: os.environ.get(f"STOWAGE_REDIS_{k}") for k in ("HOST", "PORT", "PASSWORD")}
    require(bool(env["PORT"]), "no Redis server: STOWAGE_REDIS_PORT unset "
            "(tests/run.sh starts one; or source the env of tests/emulators/redis.sh start DIR)")
    srv = Redis(env["HOST"] or "127.0.0.1", env["PORT"], env["PASSWORD"] or "")
    assert srv.client(1).ping()
    return srv


@pytest.fixture
def redis_path(redis_server, request):
    """A fresh key prefix, named after the test, ending in `:`."""
    return f"{request.node.name}-{secrets.token_hex(3)}:"


# Google's published dummy service-account key (googleapis/conformance-tests), the adapter's test data.
GCS_KEY = (ROOT / "adapters/gcs/tests/data/test_service_account.json").read_text()
GCS_KEY_EMAIL = "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com"


@dataclass
class Gcs(ObjectStore):
    """fake-gcs-server, driven over its JSON API with `requests` (it checks no credentials)."""
    endpoint: str
    project: str
    bucket: str

    type = "gcs"
    scheme = "gs"
    bucket_field = "bucket"
    secret_fields = ("google_application_credentials",)

    @property
    def secret(self) -> str:
        """The service account of the key: no response names it."""
        return GCS_KEY_EMAIL

    def storage_args(self, signed: bool = False) -> dict:
        """Connection fields of a GCS storage, as SDK `create()` keyword arguments: anonymous, or
        (`signed`) with Google's test key, which V4-signs URLs. `gcs_endpoint` is not an SDK
        argument: it travels as an additional body parameter of the request."""
        args = {"bucket": self.bucket, "google_project_id": self.project,
                "request_options": {"additional_body_parameters": {"gcs_endpoint": self.endpoint}}}
        if signed:
            args["google_application_credentials"] = GCS_KEY
        return args

    def put(self, key: str, body, metadata: dict = None) -> bytes:
        body = body.encode() if isinstance(body, str) else body
        assert not metadata, "metadata is not supported here"
        r = requests.post(f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o",
                          params={"uploadType": "media", "name": key}, data=body, timeout=30)
        assert r.status_code == 200, r.text
        return body

    def get(self, key: str) -> tuple:
        r = requests.get(f"{self.endpoint}/storage/v1/b/{self.bucket}/o/{quote(key, safe='')}",
                         params={"alt": "media"}, timeout=30)
        assert r.status_code == 200, (key, r.status_code, r.text)
        return r.content, r.headers.get("Content-Type", "")

    def keys_under(self, prefix: str) -> list:
        keys, token = [], None
        while True:
            params = {"prefix": prefix, **({"pageToken": token} if token else {})}
            r = requests.get(f"{self.endpoint}/storage/v1/b/{self.bucket}/o", params=params, timeout=30)
            assert r.status_code == 200, r.text
            keys += [o["name"] for o in r.json().get("items", [])]
            token = r.json().get("nextPageToken")
            if not token:
                return sorted(keys)


@pytest.fixture(scope="session")
def gcs():
    """The GCS server of this run (fake-gcs-server, started by tests/run.sh). Skips without one,
    which under CI=true is a failure."""
    env = {k: os.environ.get(f"STOWAGE_GCS_{k}") for k in ("ENDPOINT", "PROJECT", "BUCKET")}
    require(all(env.values()), "no GCS server: STOWAGE_GCS_ENDPOINT etc. unset "
            "(tests/run.sh starts one; or source the env of tests/emulators/gcs.sh start DIR)")
    return Gcs(env["ENDPOINT"], env["PROJECT"], env["BUCKET"])


# The 11 standard headers of the SharedKey string-to-sign, in order
# (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key).
AZURE_STANDARD = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
                  "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]


@dataclass
class Azurite(ObjectStore):
    """The Azurite server, with a small SharedKey client for putting test blobs and reading
    exported ones back (the test venv has no Azure SDK)."""
    endpoint: str
    account: str
    key: str
    container: str

    type = "azure"
    scheme = "azure-blob"
    bucket_field = "container"
    secret_fields = ("account_name", "account_key", "sas_token", "connection_string")

    @property
    def bucket(self) -> str:
        return self.container

    @property
    def secret(self) -> str:
        return self.key

    def storage_args(self, signed: bool = False) -> dict:
        """Connection fields of an Azure storage, as SDK `create()`/`validate()` keyword arguments
        (always the account key: `signed` changes nothing). `azure_endpoint` (Azurite's address)
        is not an SDK argument: it travels as an additional body parameter; without it an `azure`
        storage may only reach *.blob.core.windows.net."""
        return {"container": self.container, "account_name": self.account, "account_key": self.key,
                "request_options": {"additional_body_parameters": {"azure_endpoint": self.endpoint}}}

    def request(self, method: str, blob: str = None, params: dict = None, body: bytes = b"",
                headers: dict = None) -> requests.Response:
        """A SharedKey-signed request on the container (`blob` None) or one of its blobs."""
        path = f"/{self.container}" + (f"/{quote(blob, safe='/~')}" if blob is not None else "")
        url = self.endpoint + path
        headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06", **(headers or {})}
        if method == "PUT":
            headers.setdefault("Content-Type", "application/octet-stream")
        lower = {k.lower(): v for k, v in headers.items()}
        standard = [lower.get(h.lower(), "") for h in AZURE_STANDARD]
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

    def put_folder(self, name: str) -> None:
        """A directory placeholder as hierarchical namespaces and Storage Explorer make them: an
        empty blob named like the folder, metadata `hdi_isfolder=true`."""
        self.put(name, b"", {"hdi_isfolder": "true"})

    def get(self, blob: str) -> tuple:
        r = self.request("GET", blob)
        assert r.status_code == 200, (blob, r.status_code, r.text)
        return r.content, r.headers.get("Content-Type", "")

    def keys_under(self, prefix: str) -> list:
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
