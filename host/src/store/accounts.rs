//! Users, API tokens and projects.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Result, Store};
use crate::domain::{Project, User, now};

pub(super) const USER_COLS: &str = "id, email, username, first_name, last_name, is_superuser";
const PROJECT_COLS: &str = "id, title, description, label_config, created_by, created_at, updated_at";

pub(super) fn user(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        username: r.get(2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        is_superuser: r.get(5)?,
    })
}

fn project(r: &rusqlite::Row) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        title: r.get(1)?,
        description: r.get(2)?,
        label_config: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

impl Store {
    /// Creates the first user with API token `token` when there is no user yet.
    /// Returns `true` when it was created. With users present, a given `token` is added to the
    /// first user so a restart with a new `STOWAGE_TOKEN` still works.
    pub fn bootstrap_user(&self, token: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let first: Option<i64> =
            tx.query_row("SELECT id FROM users ORDER BY id LIMIT 1", [], |r| r.get(0)).optional()?;
        let (id, created) = match first {
            Some(id) => (id, false),
            None => {
                tx.execute(
                    "INSERT INTO users (email, username, is_superuser, created_at) VALUES ('admin@stowage.local', 'admin', 1, ?1)",
                    [now()],
                )?;
                (tx.last_insert_rowid(), true)
            }
        };
        tx.execute(
            "INSERT OR IGNORE INTO tokens (key, user_id, created_at) VALUES (?1, ?2, ?3)",
            params![token, id, now()],
        )?;
        tx.commit()?;
        Ok(created)
    }

    /// Creates a user (not an administrator) with API token `token` and returns it. The API has
    /// no sign-up yet; tests and operators' tooling use this.
    pub fn create_user(&self, email: &str, username: &str, token: &str) -> Result<User> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO users (email, username, created_at) VALUES (?1, ?2, ?3)",
            params![email, username, now()],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute("INSERT INTO tokens (key, user_id, created_at) VALUES (?1, ?2, ?3)", params![token, id, now()])?;
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        let created = tx.query_row(&sql, [id], user)?;
        tx.commit()?;
        Ok(created)
    }

    /// Whether any user exists (first start or not).
    pub fn has_users(&self) -> Result<bool> {
        Ok(self.conn()?.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?)
    }

    /// The user an API token belongs to.
    pub fn user_by_token(&self, token: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = (SELECT user_id FROM tokens WHERE key = ?1)");
        Ok(self.conn()?.query_row(&sql, [token], user).optional()?)
    }

    /// Sets the password of the first user (the administrator made at first start), as the
    /// argon2 PHC string `hash`. Returns `false` when there is no user yet.
    pub fn set_first_user_password(&self, hash: &str) -> Result<bool> {
        let sql = "UPDATE users SET password_hash = ?1 WHERE id = (SELECT MIN(id) FROM users)";
        Ok(self.conn()?.execute(sql, [hash])? == 1)
    }

    /// The user with this email (compared without case, as Django's `EmailBackend` does not, but
    /// an address's domain is case-blind and users type it both ways) and their password hash,
    /// `None` for a user without a password.
    pub fn user_by_email(&self, email: &str) -> Result<Option<(User, Option<String>)>> {
        // Emails are unique as written, so two may differ only in case: the exact one first.
        let sql = format!(
            "SELECT {USER_COLS}, password_hash FROM users WHERE email = ?1 COLLATE NOCASE \
             ORDER BY email = ?1 DESC, id LIMIT 1"
        );
        Ok(self.conn()?.query_row(&sql, [email], |r| Ok((user(r)?, r.get(6)?))).optional()?)
    }

    /// Opens a web session: `key_hash` is the SHA-256 of the cookie's key, `expires_at` Unix
    /// seconds. Sessions already expired are removed on the way.
    pub fn create_web_session(&self, key_hash: &[u8], user_id: i64, csrf_token: &str, expires_at: i64) -> Result<()> {
        let conn = self.conn()?;
        conn.execute("DELETE FROM web_sessions WHERE expires_at <= unixepoch()", [])?;
        conn.execute(
            "INSERT INTO web_sessions (key_hash, user_id, csrf_token, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![key_hash, user_id, csrf_token, expires_at],
        )?;
        Ok(())
    }

    /// The user and CSRF token of an unexpired web session.
    pub fn web_session(&self, key_hash: &[u8]) -> Result<Option<(User, String)>> {
        let sql = format!(
            "SELECT {USER_COLS}, s.csrf_token FROM web_sessions s JOIN users ON users.id = s.user_id \
             WHERE s.key_hash = ?1 AND s.expires_at > unixepoch()"
        );
        Ok(self.conn()?.query_row(&sql, [key_hash], |r| Ok((user(r)?, r.get(6)?))).optional()?)
    }

    /// Ends a web session (signing out); ending one that does not exist is no error.
    pub fn delete_web_session(&self, key_hash: &[u8]) -> Result<()> {
        self.conn()?.execute("DELETE FROM web_sessions WHERE key_hash = ?1", [key_hash])?;
        Ok(())
    }

    /// `(id, email)` of every user: whom imported annotations may name as `completed_by`.
    pub fn user_emails(&self) -> Result<Vec<(i64, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id, email FROM users ORDER BY id")?;
        Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?)
    }

    /// One user, or `None`.
    pub fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
        Ok(self.conn()?.query_row(&sql, [id], user).optional()?)
    }

    /// Creates a project owned by `created_by` and returns it.
    pub fn create_project(
        &self,
        title: &str,
        description: &str,
        label_config: &str,
        created_by: i64,
    ) -> Result<Project> {
        let conn = self.conn()?;
        let t = now();
        conn.execute(
            "INSERT INTO projects (title, description, label_config, created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![title, description, label_config, created_by, t],
        )?;
        let id = conn.last_insert_rowid();
        let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1");
        Ok(conn.query_row(&sql, [id], project)?)
    }

    /// One project, or `None`.
    pub fn project(&self, id: i64) -> Result<Option<Project>> {
        let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE id = ?1");
        Ok(self.conn()?.query_row(&sql, [id], project).optional()?)
    }

    /// All projects, in id order.
    pub fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {PROJECT_COLS} FROM projects ORDER BY id"))?;
        Ok(stmt.query_map([], project)?.collect::<rusqlite::Result<_>>()?)
    }

    /// Updates the given fields of a project; `None` keeps the stored value.
    pub fn update_project(
        &self,
        id: i64,
        title: Option<&str>,
        description: Option<&str>,
        label_config: Option<&str>,
    ) -> Result<()> {
        self.conn()?.execute(
            "UPDATE projects SET title = COALESCE(?2, title), description = COALESCE(?3, description),
             label_config = COALESCE(?4, label_config), updated_at = ?5 WHERE id = ?1",
            params![id, title, description, label_config, now()],
        )?;
        Ok(())
    }

    /// Deletes a project with its tasks, annotations and storages.
    pub fn delete_project(&self, id: i64) -> Result<bool> {
        Ok(self.conn()?.execute("DELETE FROM projects WHERE id = ?1", [id])? > 0)
    }
}
