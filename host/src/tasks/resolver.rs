//! Which import storage of a project serves a storage URI (`s3://bucket/key`): the first, by id,
//! whose adapter declares the URI's scheme and recognises its bucket (`key-of-uri`), as Label
//! Studio's `storage_can_resolve_bucket_url` does across all of a project's storages.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::uri::UriMatcher;
use crate::App;
use crate::domain::{Direction, Storage};
use crate::plugin::Session;
use crate::store::StoreError;

/// The URI-serving storages of one project, with adapter sessions taken from the pool on first
/// use and returned to it on drop.
pub struct Resolver<'a> {
    app: &'a App,
    storages: Vec<(Storage, Vec<String>, Option<Session>)>,
    schemes: Vec<String>,
}

/// Compiled matchers by scheme set: compiling the regexes costs more than resolving a URI.
static MATCHERS: LazyLock<Mutex<MatcherCache>> = LazyLock::new(Default::default);
type MatcherCache = HashMap<Vec<String>, Option<Arc<UriMatcher>>>;

impl<'a> Resolver<'a> {
    pub fn for_project(app: &'a App, project_id: i64) -> Result<Resolver<'a>, StoreError> {
        let mut schemes = Vec::new();
        let mut storages = Vec::new();
        for s in app.store.storages(Direction::Import, None, project_id)? {
            let Some(adapter) = app.registry.get(&s.type_name) else { continue };
            if adapter.info.uri_schemes.is_empty() {
                continue;
            }
            schemes.extend(adapter.info.uri_schemes.iter().cloned());
            storages.push((s, adapter.info.uri_schemes.clone(), None));
        }
        schemes.sort();
        schemes.dedup();
        Ok(Resolver { app, storages, schemes })
    }

    /// Finds URIs in task data; `None` when no storage of the project serves any scheme.
    pub fn matcher(&self) -> Option<Arc<UriMatcher>> {
        let mut cache = MATCHERS.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(self.schemes.clone()).or_insert_with(|| UriMatcher::new(&self.schemes).map(Arc::new)).clone()
    }

    /// The storage serving `uri`, its open session and the object key.
    pub async fn locate(&mut self, uri: &str) -> Option<(&Storage, &mut Session, String)> {
        let scheme = uri.split_once("://")?.0;
        let mut found = None;
        for (i, (storage, schemes, session)) in self.storages.iter_mut().enumerate() {
            if !schemes.iter().any(|s| s == scheme) {
                continue;
            }
            if session.is_none() {
                match self.app.sessions.checkout(storage) {
                    Ok(s) => *session = Some(s),
                    Err(e) => {
                        tracing::warn!(storage = storage.id, "cannot open storage to resolve a URI: {e}");
                        continue;
                    }
                }
            }
            let session = session.as_mut().expect("opened above");
            if let Ok(Some(key)) = session.key_of_uri(uri).await {
                found = Some((i, key));
                break;
            }
        }
        let (i, key) = found?;
        let (storage, _, session) = &mut self.storages[i];
        Some((storage, session.as_mut().expect("opened when located"), key))
    }
}

impl Drop for Resolver<'_> {
    fn drop(&mut self) {
        for (storage, _, session) in self.storages.drain(..) {
            if let Some(session) = session {
                self.app.sessions.checkin(&storage, session);
            }
        }
    }
}
