-- Background, resumable sync runs (issue 16).
--
-- A run is claimed in the database: at most one unfinished run per storage (the partial unique
-- index below), so a second sync request returns the run already queued or running, whichever
-- process asks. `status` is `queued` until a worker takes the run, then `in_progress`, then the
-- final status; `cursor` and `counters` (JSON, `domain::SyncCounters`) are written in the same
-- transaction as each page's tasks, so a killed service resumes exactly where it stopped.
UPDATE sync_runs SET status = 'failed', finished_at = COALESCE(finished_at, started_at)
    WHERE finished_at IS NULL;
ALTER TABLE sync_runs ADD COLUMN counters TEXT NOT NULL DEFAULT '{}';
-- 1 once the listing reached its end (the removal phase may still be to do).
ALTER TABLE sync_runs ADD COLUMN listing_done INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX sync_runs_one_unfinished ON sync_runs(storage_id) WHERE finished_at IS NULL;
CREATE INDEX sync_runs_queue ON sync_runs(status, id) WHERE finished_at IS NULL;

-- The run that last saw the link's object in a listing: after a complete listing, links not
-- seen by this run are objects gone from the storage (`sync_on_delete`).
ALTER TABLE import_links ADD COLUMN seen_run INTEGER;

-- Objects of deleted annotations that an export storage still has to delete (the immediate
-- delete failed); the next export sync retries them.
CREATE TABLE export_deletions (
    id          INTEGER PRIMARY KEY,
    storage_id  INTEGER NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (storage_id, key)
);

-- The storage's `fields` when the run was claimed: a failed run is resumed by the next sync
-- request only while they are unchanged (a cursor means nothing under another prefix).
ALTER TABLE sync_runs ADD COLUMN fields TEXT;
