// stowage's pages: the storage dialogs, the storage cards' buttons, live sync progress and the
// adapter upload. Every change goes through the REST API with the session cookie and the
// session's CSRF token (X-CSRFToken); the server renders everything else.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const RUNNING = new Set(["queued", "in_progress"]);
const POLL_MS = 1000;

/** Calls the API; answers {ok, status, data} with the parsed JSON body (or null). */
async function call(method, url, body) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRFToken": csrf } };
  if (body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(url, init);
  let data = null;
  try { data = await r.json(); } catch { /* 204, or not JSON */ }
  return { ok: r.ok, status: r.status, data };
}

/** The message of a Label Studio error body: `detail`, else `message`, else the status. */
function detailOf(answer) {
  const d = answer.data ?? {};
  return d.detail ?? d.message ?? `The server answered ${answer.status}.`;
}

// ---- Storage dialogs ----------------------------------------------------------------------

/** The dialog of a direction, its form and its state. */
function dialogOf(dir) {
  const dialog = document.getElementById(`dialog-${dir}`);
  return { dialog, form: dialog.querySelector("form"), select: dialog.querySelector("[data-type-select]") };
}

/** Puts the fields of the selected type into the dialog (from its <template>). */
function showFields(dir) {
  const { dialog, form, select } = dialogOf(dir);
  const box = form.querySelector("[data-fields]");
  const template = dialog.querySelector(`template[data-type="${CSS.escape(select.value)}"]`);
  box.replaceChildren(template ? template.content.cloneNode(true) : "");
  clearErrors(form);
}

function clearErrors(form) {
  form.querySelectorAll("[data-error-for]").forEach((p) => { p.hidden = true; p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  const top = form.querySelector("[data-form-error]");
  top.hidden = true;
  top.textContent = "";
  form.querySelector("[data-check-result]").textContent = "";
}

/** Opens a dialog to add a storage, or (with a card) to edit that storage. */
function openDialog(dir, card) {
  const { dialog, form, select } = dialogOf(dir);
  const heading = dialog.querySelector("h2");
  const submit = form.querySelector("[data-submit]");
  form.dataset.api = card ? card.dataset.api : "";
  if (card) {
    select.value = card.dataset.type;
    select.disabled = true;
    heading.textContent = `Edit ${card.querySelector("h3").textContent}`;
    submit.textContent = "Save";
  } else {
    select.disabled = false;
    heading.textContent = heading.dataset.add;
    submit.textContent = "Add Storage";
  }
  showFields(dir);
  if (card) fill(form, JSON.parse(card.dataset.values));
  dialog.showModal();
  form.querySelector("[data-fields] input, [data-fields] select")?.focus();
}

/** Fills the inputs from a storage as the API returns it (which never holds a secret). */
function fill(form, values) {
  for (const input of form.querySelectorAll("[data-fields] [name]")) {
    const v = values[input.name];
    if (input.dataset.secret !== undefined) {
      input.value = "";
      input.placeholder = "unchanged unless filled";
    } else if (input.type === "checkbox") {
      input.checked = v === true;
    } else {
      input.value = v === null || v === undefined ? "" : String(v);
    }
  }
}

/** The request body of a dialog: typed values; an empty secret or number is left out. */
function bodyOf(form) {
  const body = { project: Number(document.querySelector("[data-project]").dataset.project) };
  for (const input of form.querySelectorAll("[data-fields] [name]")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") {
      body[input.name] = input.checked;
    } else if (kind === "integer") {
      if (input.value !== "") body[input.name] = Number(input.value);
    } else if (input.dataset.secret !== undefined) {
      if (input.value !== "") body[input.name] = input.value;
    } else {
      body[input.name] = input.value;
    }
  }
  return body;
}

/** Shows an API error: each field's messages under the field, the rest at the top. */
function showErrors(form, answer) {
  clearErrors(form);
  const top = form.querySelector("[data-form-error]");
  const errors = answer.data?.validation_errors;
  if (!errors) {
    top.textContent = detailOf(answer);
    top.hidden = false;
    return;
  }
  const rest = [];
  for (const [name, messages] of Object.entries(errors)) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    const text = [].concat(messages).join(" ");
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
      form.querySelector(`[data-fields] [name="${CSS.escape(name)}"]`)?.setAttribute("aria-invalid", "true");
    } else {
      rest.push(text);
    }
  }
  if (rest.length) {
    top.textContent = rest.join(" ");
    top.hidden = false;
  }
  form.querySelector('[aria-invalid="true"]')?.focus();
}

/** The API address of the dialog's type and direction (`/api/storages/export/s3`). */
function typeApi(form) {
  const type = dialogOf(form.dataset.dir).select.value;
  return form.dataset.dir === "export" ? `/api/storages/export/${type}` : `/api/storages/${type}`;
}

async function submitDialog(form) {
  const editing = form.dataset.api;
  const body = bodyOf(form);
  const answer = editing ? await call("PATCH", editing, body) : await call("POST", typeApi(form), body);
  if (answer.ok) {
    location.reload();
  } else {
    showErrors(form, answer);
  }
}

async function checkDialog(form) {
  const body = bodyOf(form);
  if (form.dataset.api) body.id = Number(form.dataset.api.split("/").pop());
  const result = form.querySelector("[data-check-result]");
  result.textContent = "Checking…";
  const answer = await call("POST", `${typeApi(form)}/validate`, body);
  if (answer.ok) {
    clearErrors(form);
    result.textContent = "✓ Connection OK";
  } else {
    result.textContent = "";
    showErrors(form, answer);
  }
}

// ---- Storage cards ------------------------------------------------------------------------

function say(card, text) {
  card.querySelector('[data-field="message"]').textContent = text;
}

/** Writes a storage's state into its card; sizes stay, so nothing moves. */
function update(card, s) {
  const badge = card.querySelector('[data-field="status"]');
  badge.dataset.status = s.status;
  badge.textContent = s.status_label;
  for (const name of ["count", "last_sync", "last_sync_count"]) {
    card.querySelector(`[data-field="${name}"]`).textContent = s[name];
  }
  const tb = card.querySelector('[data-field="traceback"]');
  tb.textContent = s.traceback;
  tb.hidden = !s.traceback;
}

let polling = false;

/** Polls the cards' state while any storage is queued or syncing. */
async function poll() {
  if (polling) return;
  polling = true;
  const url = document.querySelector("[data-status-url]").dataset.statusUrl;
  try {
    for (;;) {
      await new Promise((done) => setTimeout(done, POLL_MS));
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) {
        const why = r.status === 401 ? "Signed out: reload the page to sign in again." : `Progress unavailable (${r.status}).`;
        document.querySelectorAll(".card").forEach((c) => say(c, why));
        break;
      }
      const states = await r.json();
      for (const s of states) {
        const card = document.querySelector(`.card[data-key="${CSS.escape(s.key)}"]`);
        if (card) update(card, s);
      }
      if (!states.some((s) => RUNNING.has(s.status))) break;
    }
  } finally {
    polling = false;
  }
}

async function syncCard(card) {
  say(card, "Starting sync…");
  const answer = await call("POST", `${card.dataset.api}/sync`);
  if (!answer.ok) {
    const errors = answer.data?.validation_errors;
    say(card, errors ? Object.values(errors).flat().join(" ") : detailOf(answer));
    return;
  }
  say(card, "");
  const badge = card.querySelector('[data-field="status"]');
  badge.dataset.status = answer.data.status;
  poll();
}

async function checkCard(card) {
  // The storage as the API returned it: the API ignores its read-only fields, and with `id` the
  // stored secrets fill in the ones not sent.
  const body = JSON.parse(card.dataset.values);
  const base = card.dataset.api.replace(/\/\d+$/, "");
  say(card, "Checking…");
  const answer = await call("POST", `${base}/validate`, body);
  if (answer.ok) {
    say(card, "✓ Connection OK");
  } else {
    const errors = answer.data?.validation_errors;
    say(card, `✕ ${errors ? Object.values(errors).flat().join(" ") : detailOf(answer)}`);
  }
}

function deleteCard(card) {
  const confirm = document.getElementById("confirm-delete");
  confirm.querySelector("[data-confirm-text]").textContent =
    `“${card.querySelector("h3").textContent}” will no longer sync. The tasks it created stay in the project.`;
  confirm.returnValue = "";
  confirm.onclose = async () => {
    if (confirm.returnValue !== "delete") return;
    const answer = await call("DELETE", card.dataset.api);
    if (answer.ok) location.reload(); else say(card, detailOf(answer));
  };
  confirm.showModal();
}

// ---- Wiring -------------------------------------------------------------------------------

function wireStoragePage() {
  for (const button of document.querySelectorAll("[data-open]")) {
    button.addEventListener("click", () => openDialog(button.dataset.open, null));
  }
  for (const dir of ["import", "export"]) {
    const { dialog, form, select } = dialogOf(dir);
    select.addEventListener("change", () => showFields(dir));
    form.addEventListener("submit", (e) => { e.preventDefault(); submitDialog(form); });
    form.querySelector('[data-action="check"]').addEventListener("click", () => checkDialog(form));
    form.querySelector('[data-action="cancel"]').addEventListener("click", () => dialog.close());
    // Nothing typed into a closed dialog stays in the page.
    dialog.addEventListener("close", () => form.querySelector("[data-fields]").replaceChildren());
  }
  for (const card of document.querySelectorAll(".card")) {
    const on = (action, f) => card.querySelector(`[data-action="${action}"]`).addEventListener("click", () => f(card));
    on("sync", syncCard);
    on("check", checkCard);
    on("edit", (c) => openDialog(c.dataset.dir, c));
    on("delete", deleteCard);
  }
  if ([...document.querySelectorAll('.card [data-field="status"]')].some((b) => RUNNING.has(b.dataset.status))) poll();
}

function wireUpload() {
  const form = document.getElementById("upload-adapter");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = form.querySelector('input[type="file"]').files[0];
    const error = form.querySelector("[data-upload-error]");
    if (!file) return;
    const answer = await call("POST", "/api/adapters", file);
    if (answer.ok) {
      location.reload();
    } else {
      error.textContent = detailOf(answer);
      error.hidden = false;
    }
  });
}

if (document.querySelector("[data-status-url]")) wireStoragePage();
if (document.getElementById("upload-adapter")) wireUpload();
