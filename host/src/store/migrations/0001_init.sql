-- stowage schema v1. Timestamps are text in Label Studio's format (2026-11-24T23:06:27.347755Z).
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    username    TEXT NOT NULL,
    first_name  TEXT NOT NULL DEFAULT '',
    last_name   TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);

-- API tokens (Label Studio's `Authorization: Token <key>`).
CREATE TABLE tokens (
    key         TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
);

CREATE TABLE projects (
    id            INTEGER PRIMARY KEY,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    label_config  TEXT NOT NULL,
    created_by    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    inner_id    INTEGER NOT NULL,
    data        TEXT NOT NULL,            -- JSON object
    meta        TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX tasks_project ON tasks(project_id, id);

CREATE TABLE predictions (
    id             INTEGER PRIMARY KEY,
    task_id        INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    result         TEXT NOT NULL,         -- JSON array
    score          REAL,
    model_version  TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL
);
CREATE INDEX predictions_task ON predictions(task_id);

CREATE TABLE annotations (
    id             INTEGER PRIMARY KEY,
    task_id        INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    result         TEXT NOT NULL,         -- JSON array
    completed_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    was_cancelled  INTEGER NOT NULL DEFAULT 0,
    ground_truth   INTEGER NOT NULL DEFAULT 0,
    lead_time      REAL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX annotations_task ON annotations(task_id);
CREATE INDEX annotations_project ON annotations(project_id);

-- Import (source) and export (target) storages of every type. `fields` holds the type's
-- non-secret API fields as a JSON object; `secrets` the write-only ones.
CREATE TABLE storages (
    id               INTEGER PRIMARY KEY,
    direction        TEXT NOT NULL CHECK (direction IN ('import', 'export')),
    type             TEXT NOT NULL,
    project_id       INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title            TEXT,
    description      TEXT,
    fields           TEXT NOT NULL DEFAULT '{}',
    secrets          TEXT NOT NULL DEFAULT '{}',
    synchronizable   INTEGER NOT NULL DEFAULT 1,
    status           TEXT NOT NULL DEFAULT 'initialized',
    traceback        TEXT,
    meta             TEXT NOT NULL DEFAULT '{}',
    last_sync        TEXT,
    last_sync_count  INTEGER,
    last_sync_job    TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX storages_project ON storages(project_id, direction);

-- Which object (and row of it) each imported task came from. The object's etag, size and
-- modification time let a later sync tell edits and deletions apart.
CREATE TABLE import_links (
    id             INTEGER PRIMARY KEY,
    storage_id     INTEGER NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    task_id        INTEGER NOT NULL UNIQUE REFERENCES tasks(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    row_index      INTEGER NOT NULL DEFAULT -1,   -- -1: the whole object is one task
    etag           TEXT,
    size           INTEGER,
    last_modified  INTEGER,                       -- ms since the Unix epoch
    object_exists  INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    UNIQUE (storage_id, key, row_index)
);

-- Which object each annotation was exported to.
CREATE TABLE export_links (
    id             INTEGER PRIMARY KEY,
    storage_id     INTEGER NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    annotation_id  INTEGER NOT NULL REFERENCES annotations(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    object_exists  INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (storage_id, annotation_id)
);
CREATE INDEX export_links_annotation ON export_links(annotation_id);

-- One row per sync job; `cursor` is the listing position after the last committed page.
CREATE TABLE sync_runs (
    id           INTEGER PRIMARY KEY,
    storage_id   INTEGER NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    cursor       TEXT,
    created      INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
);
