-- Administrators (Label Studio's `is_superuser`): only they may install storage adapters.
-- The first user, created by `stowage serve` at first start, is the administrator.
ALTER TABLE users ADD COLUMN is_superuser INTEGER NOT NULL DEFAULT 0;
UPDATE users SET is_superuser = 1 WHERE id = (SELECT MIN(id) FROM users);
