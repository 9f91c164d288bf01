-- The web page's sign-in (issue 15). A user may have a password (argon2 PHC string; NULL = the
-- user signs in with an API token only). A signed-in browser holds a random session key in a
-- cookie; only its SHA-256 is stored, so a copy of the database opens no session. Each session
-- has its own CSRF token, which every form and every cookie-authenticated API write must carry.
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE TABLE web_sessions (
    key_hash    BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    -- Unix seconds; a session past it is refused and removed at the next sign-in.
    expires_at  INTEGER NOT NULL
);
