-- Task files imported in parts (issue 17): a file of more tasks than one commit holds is
-- committed in batches, each with its links, while the run's cursor stays on the page. The run
-- names the file being imported (`open_object`), so a run resumed after a kill continues that
-- file after its last linked row instead of taking it as done; NULL when no file is open.
ALTER TABLE sync_runs ADD COLUMN open_object TEXT;
