//! `stowage sync`: a client of a running stowage service, not part of the service. It sends
//! `POST {url}/api/storages[/export]/{type}/{id}/sync` with `Authorization: Token TOKEN`, then
//! polls `GET {url}/api/storages[/export]/{type}/{id}` every `--interval-ms` until the storage's
//! `status` is final, showing the run's counters from its `meta`: a spinner on stderr when that is
//! a terminal, else a plain line on stdout whenever the status or the counters change (counters
//! at most once a second). It ends with one summary line on stdout (`completed: listed=...`) and,
//! when the run did not complete cleanly, the storage's `traceback` on stderr.
//!
//! Exit codes: 0 `completed`, 2 `completed_with_errors`, 1 `failed` or any error (an HTTP error
//! status, shown with the body's `detail`; a service that cannot be reached; an unknown storage,
//! 404). The token is never printed.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use indicatif::{HumanCount, ProgressBar};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::config::SyncArgs;
use crate::domain::{SyncCounters, SyncStatus};

/// Exit code of a run that ended `completed_with_errors`.
pub const EXIT_COMPLETED_WITH_ERRORS: i32 = 2;
/// Exit code of a run that failed, or of a request that did.
pub const EXIT_FAILED: i32 = 1;

/// Deadline of one HTTP request to the service.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Least time between two plain progress lines that only differ in counters.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Runs `stowage sync`: syncs the storage, waits for the run to end and returns the exit code.
/// Errors are printed to stderr.
pub async fn sync(args: &SyncArgs) -> i32 {
    match run(args).await {
        Ok(status) => exit_code(status),
        Err(e) => {
            eprintln!("stowage sync: {e:#}");
            EXIT_FAILED
        }
    }
}

/// Exit code of a run that ended in `status`: 0, [`EXIT_COMPLETED_WITH_ERRORS`] or
/// [`EXIT_FAILED`].
pub fn exit_code(status: SyncStatus) -> i32 {
    match status {
        SyncStatus::Completed => 0,
        SyncStatus::CompletedWithErrors => EXIT_COMPLETED_WITH_ERRORS,
        _ => EXIT_FAILED,
    }
}

async fn run(args: &SyncArgs) -> anyhow::Result<SyncStatus> {
    let api = Api::new(args)?;
    let mut sync_url = api.storage.clone();
    sync_url.path_segments_mut().expect("a base URL").push("sync");
    let mut progress = Progress::of(&api.call(Method::POST, sync_url).await?)?;
    let mut view = View::new();
    let interval = Duration::from_millis(args.interval_ms);
    while !progress.status.is_final() {
        view.show(&progress);
        tokio::time::sleep(interval).await;
        progress = Progress::of(&api.call(Method::GET, api.storage.clone()).await?)?;
    }
    drop(view);
    println!("{}", progress.summary());
    if progress.status != SyncStatus::Completed
        && let Some(traceback) = &progress.traceback
    {
        eprintln!("traceback:\n{traceback}");
    }
    Ok(progress.status)
}

/// One storage of the service: its address and the credentials to call it.
struct Api {
    http: reqwest::Client,
    /// `{url}/api/storages[/export]/{type}/{id}`.
    storage: Url,
    /// The `Authorization` header value.
    auth: String,
}

impl Api {
    fn new(args: &SyncArgs) -> anyhow::Result<Api> {
        let mut storage = Url::parse(&args.url).with_context(|| format!("--url {:?} is not a URL", args.url))?;
        storage
            .path_segments_mut()
            .map_err(|()| anyhow!("--url {:?} is not an http URL", args.url))?
            .pop_if_empty()
            .extend(["api", "storages"])
            .extend(args.export.then_some("export"))
            .push(&args.storage_type)
            .push(&args.id.to_string());
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        Ok(Api { http, storage, auth: format!("Token {}", args.token) })
    }

    /// Sends a request; an answer other than 2xx is an error that says its status and `detail`.
    async fn call(&self, method: Method, url: Url) -> anyhow::Result<Value> {
        let what = format!("{method} {url}");
        let resp = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .send()
            .await
            .with_context(|| format!("{what}: no answer from the service"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("{what}: reading the answer"))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what}: HTTP {status}{}", explanation(&body));
        }
        Ok(body)
    }
}

/// What an error body says: `: detail` (with the validation errors, if any), else the body
/// itself, shortened.
fn explanation(body: &Value) -> String {
    match (body["detail"].as_str(), body.get("validation_errors")) {
        (Some(detail), Some(errors)) => format!(": {detail} {errors}"),
        (Some(detail), None) => format!(": {detail}"),
        _ if body.is_null() => String::new(),
        _ => format!(": {}", body.to_string().chars().take(500).collect::<String>()),
    }
}

/// Where a storage's sync stands, read from the storage's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub status: SyncStatus,
    /// The run's counters from `meta` (zero where absent).
    pub counters: SyncCounters,
    /// Objects listed per second, `meta.rate_per_s`.
    pub rate_per_s: f64,
    /// Why the run failed, or which objects it could not import.
    pub traceback: Option<String>,
}

impl Progress {
    /// Reads a storage as `GET /api/storages/{type}/{id}` returns it.
    pub fn of(storage: &Value) -> anyhow::Result<Progress> {
        let status = storage["status"]
            .as_str()
            .and_then(SyncStatus::parse)
            .ok_or_else(|| anyhow!("the service answered no known sync status: {}", storage["status"]))?;
        let meta = &storage["meta"];
        Ok(Progress {
            status,
            counters: serde_json::from_value(meta.clone()).unwrap_or_default(),
            rate_per_s: meta["rate_per_s"].as_f64().unwrap_or(0.0),
            traceback: storage["traceback"].as_str().map(str::to_string),
        })
    }

    /// A plain progress line: `in_progress listed=12000 matched=11990 ... rate=3400/s`.
    pub fn line(&self) -> String {
        format!("{} {}", self.status.as_str(), self.fields())
    }

    /// The summary line: `completed: listed=300 matched=300 created=300 ...`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.status.as_str(), self.fields())
    }

    fn fields(&self) -> String {
        let c = &self.counters;
        format!(
            "listed={} matched={} created={} updated={} removed={} marked={} failed={} rate={:.0}/s",
            c.objects_listed,
            c.objects_matched,
            c.tasks_created,
            c.tasks_updated,
            c.tasks_removed,
            c.tasks_marked,
            c.objects_failed,
            self.rate_per_s
        )
    }

    /// The spinner's message: `in_progress  listed 12,000  matched 11,990  created 11,990  3,400/s`;
    /// the other counters only when not zero.
    pub fn message(&self) -> String {
        let c = &self.counters;
        let mut parts = vec![self.status.as_str().to_string()];
        let counts = [
            ("listed", c.objects_listed, true),
            ("matched", c.objects_matched, true),
            ("created", c.tasks_created, true),
            ("updated", c.tasks_updated, false),
            ("removed", c.tasks_removed, false),
            ("marked", c.tasks_marked, false),
            ("failed", c.objects_failed, false),
        ];
        for (name, n, always) in counts {
            if always || n > 0 {
                parts.push(format!("{name} {}", HumanCount(n)));
            }
        }
        parts.push(format!("{}/s", HumanCount(self.rate_per_s.round() as u64)));
        parts.join("  ")
    }

    /// Same status and counters (the rate follows the counters).
    fn same_as(&self, other: &Progress) -> bool {
        self.status == other.status && self.counters == other.counters
    }
}

/// How progress is shown: a spinner on stderr when it is a terminal, else plain lines on stdout.
enum View {
    Spinner(ProgressBar),
    Lines { printed: Option<(Progress, Instant)> },
}

impl View {
    fn new() -> View {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            View::Spinner(bar)
        } else {
            View::Lines { printed: None }
        }
    }

    fn show(&mut self, p: &Progress) {
        match self {
            View::Spinner(bar) => bar.set_message(p.message()),
            View::Lines { printed } => {
                let due = match printed {
                    None => true,
                    Some((last, at)) => last.status != p.status || (!last.same_as(p) && at.elapsed() >= LINE_EVERY),
                };
                if due {
                    println!("{}", p.line());
                    *printed = Some((p.clone(), Instant::now()));
                }
            }
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let View::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_status_and_counters_from_the_storage() {
        let storage = json!({"status": "in_progress", "traceback": null, "meta": {
            "attempts": 1, "objects_listed": 12000, "objects_matched": 11990, "tasks_created": 11990,
            "pages_done": 3, "rate_per_s": 3400.4}});
        let p = Progress::of(&storage).unwrap();
        assert_eq!(
            p.line(),
            "in_progress listed=12000 matched=11990 created=11990 updated=0 removed=0 marked=0 failed=0 rate=3400/s"
        );
        assert_eq!(p.message(), "in_progress  listed 12,000  matched 11,990  created 11,990  3,400/s");
        assert!(p.summary().starts_with("in_progress: listed=12000 "));
        assert!(Progress::of(&json!({"status": "queued", "meta": {}})).unwrap().counters == SyncCounters::default());
        assert!(Progress::of(&json!({"detail": "Not found."})).is_err());
    }

    #[test]
    fn error_bodies_say_their_detail() {
        assert_eq!(explanation(&json!({"detail": "Invalid token.", "status_code": 401})), ": Invalid token.");
        assert_eq!(
            explanation(&json!({"detail": "Validation error", "validation_errors": {"path": ["gone"]}})),
            r#": Validation error {"path":["gone"]}"#
        );
        assert_eq!(explanation(&json!({"message": "not synchronizable"})), r#": {"message":"not synchronizable"}"#);
        assert_eq!(explanation(&Value::Null), "");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(SyncStatus::Completed), 0);
        assert_eq!(exit_code(SyncStatus::CompletedWithErrors), 2);
        assert_eq!(exit_code(SyncStatus::Failed), 1);
    }
}
