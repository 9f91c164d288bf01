"""The web page, driven in a real browser (Playwright for Python on Debian's Chromium): sign in,
create a project, add, check, sync, edit and delete storages through the Cloud Storage dialogs,
see tasks and their images, upload an adapter; and, over plain HTTP, the sign-in redirects and
CSRF refusals.

Env: STOWAGE_CHROMIUM (default /usr/bin/chromium, installed by tests/run.sh),
STOWAGE_EXAMPLE_ADAPTER (the SDK example adapter's .wasm, built by tests/run.sh), STOWAGE_SHOTS
(where screenshots go; default target/web-shots). Without Chromium or the example adapter the
tests skip, which under CI=true is a failure.
"""

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from conftest import ADAPTERS, BIN, ROOT, require, start_server
from helpers import IMAGE_CONFIG, api, png

CHROMIUM = Path(os.environ.get("STOWAGE_CHROMIUM", "/usr/bin/chromium"))
EXAMPLE_ADAPTER = os.environ.get("STOWAGE_EXAMPLE_ADAPTER", "")
SHOTS = Path(os.environ.get("STOWAGE_SHOTS", ROOT / "target/web-shots"))
PASSWORD = "a-password-" + secrets.token_hex(4)
# Chromium flags for this closed network (see shared/reference/browser-testing.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A service of its own: only the local-files and S3 adapters (so an upload is new), and a
    password for the first user."""
    tmp = tmp_path_factory.mktemp("web")
    adapters = tmp / "adapters"
    adapters.mkdir()
    for name in ("stowage_adapter_localfs.wasm", "stowage_adapter_s3.wasm"):
        require((ADAPTERS / name).is_file(), f"{name} not in {ADAPTERS} (run adapters/build.sh)")
        shutil.copy(ADAPTERS / name, adapters / name)
    with start_server(tmp, adapters, {"STOWAGE_PASSWORD": PASSWORD}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM.is_file(), f"no Chromium at {CHROMIUM} (tests/run.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def shot(pg, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(pg, web, token: str = None):
    pg.goto(web.url + "/")
    assert pg.url == web.url + "/user/login"
    pg.get_by_label("API token").fill(token or web.token)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(web.url + "/projects")


def open_add_dialog(pg, label: str, type_title: str):
    pg.get_by_role("button", name=label).click()
    dialog = pg.get_by_role("dialog")
    dialog.get_by_label("Storage Type").select_option(label=type_title)
    return dialog


def card(pg, title: str):
    return pg.locator(".card", has=pg.get_by_role("heading", name=title, exact=True))


def wait_synced(c, count: int):
    """Waits until a card says Completed and shows `count` as its task (or annotation) count."""
    c.locator('[data-field="status"][data-status="completed"]').wait_for(timeout=WAIT_MS)
    deadline = time.monotonic() + 30
    while c.locator('[data-field="count"]').inner_text() != str(count) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.locator('[data-field="count"]').inner_text() == str(count)


def test_storages_are_added_checked_synced_and_deleted_in_the_browser(web, page, s3, key_prefix):
    pg = page
    pets = web.doc_root / "pets"
    pets.mkdir()
    for i in range(3):
        (pets / f"pet{i}.png").write_bytes(png(40 + i, 30, (200, 40 * i, 90)))
    out = web.doc_root / "out"
    out.mkdir()
    for i in range(2):
        s3.put(f"{key_prefix}/cat{i}.png", png(20 + i, 20, (10, 200, 30)))
    wrong_secret = "wrong-" + secrets.token_hex(16)

    pg.goto(web.url + "/")
    shot(pg, "01-sign-in")
    sign_in(pg, web)
    pg.get_by_label("Project Name").fill("Pets")
    pg.get_by_label("Labeling config").fill(IMAGE_CONFIG)
    pg.get_by_role("button", name="Create Project").click()
    pg.wait_for_url(re.compile(r"/projects/\d+/settings/storage$"))
    pid = int(pg.url.split("/")[-3])
    assert pg.get_by_role("heading", level=1).inner_text() == "Cloud Storage"
    shot(pg, "02-cloud-storage-empty")

    # Local files, blob mode: check the connection in the dialog, then add and sync.
    dialog = open_add_dialog(pg, "Add Source Storage", "Local files")
    dialog.get_by_label("Storage Title").fill("Local pets")
    dialog.get_by_label("Absolute local path").fill(str(pets))
    dialog.get_by_label("Treat every bucket object as a source file").check()
    dialog.get_by_role("button", name="Check Connection").click()
    dialog.get_by_text("✓ Connection OK").wait_for()
    shot(pg, "03-add-source-storage")
    dialog.get_by_role("button", name="Add Storage").click()
    local = card(pg, "Local pets")
    local.wait_for()
    local.get_by_role("button", name="Sync").click()
    wait_synced(local, 3)

    # S3: a wrong secret is refused with the reason shown; the right one adds the storage.
    dialog = open_add_dialog(pg, "Add Source Storage", "AWS S3")
    dialog.get_by_label("Storage Title").fill("Cats on S3")
    dialog.get_by_label("Bucket Name").fill(s3.bucket)
    dialog.get_by_label("Bucket Prefix").fill(key_prefix)
    dialog.get_by_label("Region Name").fill(s3.region)
    dialog.get_by_label("S3 Endpoint").fill(s3.endpoint)
    dialog.get_by_label("Access Key ID").fill(s3.key_id)
    dialog.get_by_label("Secret Access Key").fill(wrong_secret)
    dialog.get_by_label("Treat every bucket object as a source file").check()
    dialog.get_by_role("button", name="Add Storage").click()
    error = dialog.get_by_role("alert")
    error.wait_for()
    assert error.inner_text() == f"Cannot connect to S3 {s3.bucket} with specified AWS credentials"
    shot(pg, "04-wrong-secret")
    assert api(web, "GET", "/api/storages/s3", params={"project": pid}).json() == []
    dialog.get_by_label("Secret Access Key").fill(s3.secret_key)
    dialog.get_by_role("button", name="Add Storage").click()
    cats = card(pg, "Cats on S3")
    cats.wait_for()
    cats.get_by_role("button", name="Check Connection").click()
    cats.get_by_text("✓ Connection OK").wait_for()
    cats.get_by_role("button", name="Sync").click()
    wait_synced(cats, 2)
    shot(pg, "05-cloud-storage-synced")

    # Edit: the stored secret is never filled back; saving without it keeps it.
    cats.get_by_role("button", name="Edit").click()
    dialog = pg.get_by_role("dialog")
    secret_input = dialog.get_by_label("Secret Access Key")
    assert secret_input.input_value() == ""
    assert secret_input.get_attribute("placeholder") == "unchanged unless filled"
    assert dialog.get_by_label("Bucket Prefix").input_value() == key_prefix
    dialog.get_by_label("Storage Title").fill("Cats")
    for secret in (s3.secret_key, wrong_secret):
        assert secret not in pg.content()
    dialog.get_by_role("button", name="Save").click()
    cats = card(pg, "Cats")
    cats.wait_for()
    cats.get_by_role("button", name="Check Connection").click()
    cats.get_by_text("✓ Connection OK").wait_for()
    for secret in (s3.secret_key, wrong_secret):
        assert secret not in pg.content()

    # Tasks: the project is linked by its title; its images render through the resolver.
    pg.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    row = pg.get_by_role("row", name=re.compile("^Pets"))
    assert row.get_by_role("cell").all_inner_texts()[1:] == ["5", "0"]
    shot(pg, "06-projects")
    pg.get_by_role("link", name="Pets", exact=True).click()
    pg.wait_for_url(f"{web.url}/projects/{pid}/data")
    assert pg.locator("[data-total]").inner_text() == "5"
    assert pg.get_by_role("link", name="Settings").get_attribute("href") == f"/projects/{pid}/settings"
    images = pg.locator("img.preview")
    assert images.count() == 5
    for i in range(5):
        images.nth(i).scroll_into_view_if_needed()
    pg.wait_for_function("[...document.querySelectorAll('img.preview')].every(i => i.complete && i.naturalWidth > 0)")
    widths = sorted(pg.eval_on_selector_all("img.preview", "imgs => imgs.map(i => i.naturalWidth)"))
    assert widths == [20, 21, 40, 41, 42]
    shot(pg, "07-tasks")

    # A target storage receives an annotation made through the API when synced.
    pg.get_by_role("link", name="Cloud Storage").click()
    dialog = open_add_dialog(pg, "Add Target Storage", "Local files")
    dialog.get_by_label("Storage Title").fill("Annotations out")
    dialog.get_by_label("Absolute local path").fill(str(out))
    dialog.get_by_role("button", name="Add Storage").click()
    target = card(pg, "Annotations out")
    target.wait_for()
    task = api(web, "GET", "/api/tasks/", params={"project": pid}).json()["tasks"][0]["id"]
    made = api(web, "POST", f"/api/tasks/{task}/annotations/",
               json={"result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                 "value": {"choices": ["cat"]}}]})
    assert made.status_code == 201, made.text
    target.get_by_role("button", name="Sync").click()
    wait_synced(target, 1)
    assert sorted(p.name for p in out.iterdir()) == [str(made.json()["id"])]

    # Delete, with confirmation: the storage goes, its tasks stay.
    pg.once("dialog", lambda d: pytest.fail(f"unexpected browser dialog {d.message}"))
    card(pg, "Cats").get_by_role("button", name="Delete").click()
    confirm = pg.get_by_role("dialog")
    assert "Cats" in confirm.inner_text()
    confirm.get_by_role("button", name="Delete").click()
    card(pg, "Cats").wait_for(state="detached")
    assert [s["title"] for s in api(web, "GET", "/api/storages", params={"project": pid}).json()] == ["Local pets"]
    assert api(web, "GET", "/api/tasks/", params={"project": pid}).json()["total"] == 5
    for secret in (s3.secret_key, wrong_secret):
        assert secret not in pg.content()
    shot(pg, "08-cloud-storage-after-delete")
    pg.set_viewport_size({"width": 400, "height": 860})
    shot(pg, "09-cloud-storage-narrow")


def test_an_uploaded_adapter_appears_in_the_dialog_with_its_manifest_fields(web, page):
    require(Path(EXAMPLE_ADAPTER).is_file(),
            f"no example adapter at {EXAMPLE_ADAPTER!r} (tests/run.sh builds sdk/examples/http-index)")
    pg = page
    sign_in(pg, web)
    pid = api(web, "POST", "/api/projects/", json={"title": "Uploads"}).json()["id"]
    pg.get_by_role("link", name="Adapters").click()
    assert pg.get_by_role("row", name=re.compile("HTTP directory index")).count() == 0
    pg.get_by_label("Adapter file (.wasm)").set_input_files(EXAMPLE_ADAPTER)
    pg.get_by_role("button", name="Upload Adapter").click()
    row = pg.get_by_role("row", name=re.compile("HTTP directory index"))
    row.wait_for()
    assert "active" in row.inner_text() and "0.3.0" in row.inner_text()
    shot(pg, "10-adapters")

    pg.goto(f"{web.url}/projects/{pid}/settings/storage")
    dialog = open_add_dialog(pg, "Add Source Storage", "HTTP directory index")
    url_input = dialog.get_by_label("URL of the served folder")
    assert url_input.get_attribute("name") == "url"
    assert url_input.get_attribute("aria-required") == "true"
    dialog.get_by_text("e.g. http://127.0.0.1:8000/data/").wait_for()
    assert dialog.get_by_label("Bucket Prefix").get_attribute("name") == "prefix"
    # Read-only: no target storage of this type.
    assert "HTTP directory index" not in pg.locator("#type-export").inner_text()
    dialog.get_by_role("button", name="Add Storage").click()
    expect(dialog.locator('[data-error-for="url"]')).to_have_text("This field is required.")
    shot(pg, "11-uploaded-adapter-dialog")


def session_of(web, token: str = None, email: str = None, password: str = None) -> requests.Session:
    """A signed-in HTTP session (as a browser has after the sign-in form)."""
    s = requests.Session()
    form = s.get(web.url + "/user/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text).group(1)
    fields = {"csrf_token": csrf, "token": token or "", "email": email or "", "password": password or ""}
    r = s.post(web.url + "/user/login", data=fields, allow_redirects=False, timeout=10)
    s.last = r
    return s


def csrf_of(s: requests.Session, web) -> str:
    page = s.get(web.url + "/projects", timeout=10)
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page.text).group(1)


def test_pages_need_a_session_and_every_write_its_csrf_token(web):
    # Signed out: every page goes to the sign-in page, coming back after.
    r = requests.get(web.url + "/", allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["location"]) == (303, "/user/login")
    r = requests.get(web.url + "/projects/1/settings/storage", allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["location"]) == (303, "/user/login?next=%2Fprojects%2F1%2Fsettings%2Fstorage")
    # What the page's script polls answers 401, which the script can tell apart.
    r = requests.get(web.url + "/projects/1/settings/storage/status", allow_redirects=False, timeout=10)
    assert (r.status_code, r.json()) == (401, {"detail": "Signed out."})

    # The sign-in form itself needs the token of its own form.
    r = requests.post(web.url + "/user/login", data={"token": web.token}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "CSRF verification failed" in r.text
    bad = session_of(web, email="admin@stowage.local", password="not-it")
    assert bad.last.status_code == 401 and "Wrong email or password." in bad.last.text
    assert "stowage_session" not in bad.cookies
    good = session_of(web, email="ADMIN@stowage.local", password=PASSWORD)
    assert (good.last.status_code, good.last.headers["location"]) == (303, "/projects")
    cookie = good.last.headers["set-cookie"]
    assert "stowage_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    # A form post without the session's token changes nothing.
    before = len(api(web, "GET", "/api/projects/").json()["results"])
    r = good.post(web.url + "/projects", data={"title": "Forged"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "CSRF verification failed" in r.text
    r = good.post(web.url + "/projects", data={"title": "Forged", "csrf_token": "0" * 64},
                  allow_redirects=False, timeout=10)
    assert r.status_code == 403
    assert len(api(web, "GET", "/api/projects/").json()["results"]) == before
    csrf = csrf_of(good, web)
    r = good.post(web.url + "/projects", data={"title": "ab", "csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "Ensure this field has at least 3 characters." in r.text
    r = good.post(web.url + "/projects", data={"title": "Real", "csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and re.fullmatch(r"/projects/\d+/settings/storage", r.headers["location"])
    assert len(api(web, "GET", "/api/projects/").json()["results"]) == before + 1

    # The API with the session cookie: reads as is, writes only with X-CSRFToken.
    assert good.get(web.url + "/api/projects/", timeout=10).status_code == 200
    r = good.post(web.url + "/api/projects/", json={"title": "Forged"}, timeout=10)
    assert (r.status_code, r.json()["detail"]) == (403, "CSRF Failed: CSRF token missing.")
    r = good.post(web.url + "/api/projects/", json={"title": "Forged"}, headers={"X-CSRFToken": "x" * 64}, timeout=10)
    assert (r.status_code, r.json()["detail"]) == (403, "CSRF Failed: CSRF token incorrect.")
    r = good.post(web.url + "/api/projects/", json={"title": "Scripted"}, headers={"X-CSRFToken": csrf}, timeout=10)
    assert r.status_code == 201
    assert len(api(web, "GET", "/api/projects/").json()["results"]) == before + 2

    # Signing out needs the token too, and ends the session for good.
    assert good.post(web.url + "/user/logout", data={"next": "/"}, allow_redirects=False, timeout=10).status_code == 403
    r = good.post(web.url + "/user/logout", data={"csrf_token": csrf}, allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["location"]) == (303, "/user/login")
    old = requests.Session()
    old.cookies.update({"stowage_session": cookie.split(";")[0].split("=", 1)[1]})
    assert old.get(web.url + "/projects", allow_redirects=False, timeout=10).status_code == 303
    assert old.get(web.url + "/api/projects/", timeout=10).status_code == 401



# Every route of the REST API, with its methods: the document must list exactly these.
API_ROUTES = {
    "/api/adapters": ["get", "post"],
    "/api/annotations/{id}": ["delete", "get", "patch"],
    "/api/current-user/whoami": ["get"],
    "/api/projects": ["get", "post"],
    "/api/projects/{id}": ["delete", "get", "patch"],
    "/api/projects/{id}/import": ["post"],
    "/api/schema": ["get"],
    "/api/storages": ["get"],
    "/api/storages/export": ["get"],
    "/api/storages/export/types": ["get"],
    "/api/storages/export/{type}": ["get", "post"],
    "/api/storages/export/{type}/validate": ["post"],
    "/api/storages/export/{type}/{id}": ["delete", "get", "patch", "put"],
    "/api/storages/export/{type}/{id}/sync": ["post"],
    "/api/storages/types": ["get"],
    "/api/storages/{type}": ["get", "post"],
    "/api/storages/{type}/validate": ["post"],
    "/api/storages/{type}/{id}": ["delete", "get", "patch", "put"],
    "/api/storages/{type}/{id}/sync": ["post"],
    "/api/tasks": ["get", "post"],
    "/api/tasks/{id}": ["delete", "get"],
    "/api/tasks/{id}/annotations": ["get", "post"],
    "/api/version": ["get"],
    "/data/local-files": ["get"],
    "/health": ["get"],
    "/projects/{id}/presign": ["get"],
    "/projects/{id}/resolve": ["get"],
    "/tasks/{id}/presign": ["get"],
    "/tasks/{id}/resolve": ["get"],
}


def test_the_openapi_document_validates_and_lists_every_route(web, page):
    from openapi_spec_validator import validate

    r = requests.get(web.url + "/api/schema", timeout=10)
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    doc = r.json()
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert {p: sorted(item) for p, item in doc["paths"].items()} == API_ROUTES
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == 46
    # Each documented operation is routed: with a wrong token it is refused by authentication
    # (an unrouted path or method would get 404 or 405), but for the three open ones.
    open_routes = {"/health", "/api/version", "/api/schema"}
    for path, methods in API_ROUTES.items():
        concrete = web.url + path.replace("{id}", "999999").replace("{type}", "localfiles")
        for method in methods:
            got = requests.request(method, concrete, headers={"Authorization": "Token wrong"}, timeout=10)
            assert got.status_code == (200 if path in open_routes else 401), (method, path, got.status_code)
    # The page that renders it, with one row per operation.
    sign_in(page, web)
    page.get_by_role("link", name="API").click()
    page.wait_for_url(web.url + "/docs/api")
    assert page.locator("table.api tbody tr").count() == 46
    sync_row = page.locator("table.api tbody tr").filter(has=page.get_by_text("/api/storages/{type}/{id}/sync", exact=True))
    assert sync_row.get_by_role("cell").all_inner_texts()[:3] == [
        "POST", "/api/storages/{type}/{id}/sync", "Sync: import new objects as tasks"]
    shot(page, "12-api-docs")


def test_served_files_cannot_script_and_pages_cannot_be_framed(web):
    # A stored HTML file opened from the resolver or local files runs sandboxed: it cannot use
    # a signed-in session (found by trying: it could read the CSRF token and write).
    (web.doc_root / "hostile").mkdir()
    (web.doc_root / "hostile" / "page.html").write_text("<script>fetch('/api/projects')</script>")
    pid = api(web, "POST", "/api/projects/", json={"title": "Hostile"}).json()["id"]
    made = api(web, "POST", "/api/storages/localfiles", json={"project": pid, "path": str(web.doc_root / "hostile")})
    assert made.status_code == 201, made.text
    r = api(web, "GET", "/data/local-files/", params={"d": "hostile/page.html"})
    assert r.status_code == 200
    assert (r.headers["content-security-policy"], r.headers["x-content-type-options"]) == ("sandbox", "nosniff")
    s = session_of(web, token=web.token)
    r = s.get(web.url + "/projects", timeout=10)
    assert (r.headers["x-frame-options"], r.headers["content-security-policy"]) == ("DENY", "frame-ancestors 'none'")
    # After sign-in, only this site's paths are followed; a tab (which browsers drop) or a
    # backslash does not make `//elsewhere`.
    for outside in ["/\t/evil.example/", "/\\evil.example", "//evil.example", "https://evil.example/"]:
        r = s.get(web.url + "/user/login", params={"next": outside}, allow_redirects=False, timeout=10)
        assert (r.status_code, r.headers["location"]) == (303, "/projects"), outside
    # The open routes are documented as such.
    doc = requests.get(web.url + "/api/schema", timeout=10).json()
    open_ops = sorted(p for p, item in doc["paths"].items() for op in item.values() if op.get("security") == [{}])
    assert open_ops == ["/api/schema", "/api/version", "/health"]


def test_an_empty_or_short_password_is_refused_at_start(tmp_path):
    for password in ["", "short"]:
        d = tmp_path / f"p{len(password)}"
        d.mkdir()
        r = subprocess.run(
            [str(BIN), "serve", "--bind", "127.0.0.1:0", "--data-dir", str(d), "--adapters-dir", str(d)],
            env={**os.environ, "STOWAGE_PASSWORD": password}, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert "--password (STOWAGE_PASSWORD) must have at least 8 characters" in r.stderr
