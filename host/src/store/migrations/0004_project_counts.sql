-- A project's task, annotation and prediction counts, kept by triggers in the transaction that
-- changes them, so reading a project (GET /api/projects, which Label Studio answers with these
-- counts) costs no scan of its tasks while a sync inserts them. Foreign-key cascades fire the
-- delete triggers too.
ALTER TABLE projects ADD COLUMN task_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN annotation_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN prediction_count INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET
    task_count = (SELECT COUNT(*) FROM tasks WHERE project_id = projects.id),
    annotation_count = (SELECT COUNT(*) FROM annotations WHERE project_id = projects.id),
    prediction_count = (SELECT COUNT(*) FROM predictions WHERE project_id = projects.id);

CREATE TRIGGER tasks_counted AFTER INSERT ON tasks BEGIN
    UPDATE projects SET task_count = task_count + 1 WHERE id = NEW.project_id;
END;
CREATE TRIGGER tasks_uncounted AFTER DELETE ON tasks BEGIN
    UPDATE projects SET task_count = task_count - 1 WHERE id = OLD.project_id;
END;
CREATE TRIGGER annotations_counted AFTER INSERT ON annotations BEGIN
    UPDATE projects SET annotation_count = annotation_count + 1 WHERE id = NEW.project_id;
END;
CREATE TRIGGER annotations_uncounted AFTER DELETE ON annotations BEGIN
    UPDATE projects SET annotation_count = annotation_count - 1 WHERE id = OLD.project_id;
END;
CREATE TRIGGER predictions_counted AFTER INSERT ON predictions BEGIN
    UPDATE projects SET prediction_count = prediction_count + 1 WHERE id = NEW.project_id;
END;
CREATE TRIGGER predictions_uncounted AFTER DELETE ON predictions BEGIN
    UPDATE projects SET prediction_count = prediction_count - 1 WHERE id = OLD.project_id;
END;
