//! `stowage serve`: settings -> App (database, adapters) -> api::router -> HTTP. `stowage
//! conformance` and `stowage sync` (a client of a running service) go to their modules.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rand::Rng;

use stowage::config::{Cli, Command};
use stowage::{App, api};

/// Shortest `--password` accepted (Django's `MinimumLengthValidator` default).
const MIN_PASSWORD_CHARS: usize = 8;

/// A Label-Studio-style API token: 40 hex digits.
fn new_token() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    hex::encode(bytes)
}

/// `stowage conformance`: prints the result and exits 1 when a check failed.
async fn conformance(args: &stowage::config::ConformanceArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.seed_dir
        && !stowage::conformance::is_empty_dir(dir)
    {
        anyhow::bail!("--seed-dir {} must be empty", dir.display());
    }
    let failures = stowage::conformance::run(args).await?;
    if failures.is_empty() {
        println!("conformance: all checks passed ({})", args.adapter.display());
        return Ok(());
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!("conformance: {} check(s) failed ({})", failures.len(), args.adapter.display());
    std::process::exit(1);
}

/// The command line, or exit: clap's usage errors exit 2, except for `stowage sync`, where 2 means
/// `completed_with_errors` and any error is 1.
fn parse_cli() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| {
        if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("sync") {
            let _ = e.print();
            std::process::exit(stowage::client::EXIT_FAILED);
        }
        e.exit()
    })
}

/// Logs to stdout, filtered by `RUST_LOG`.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = match parse_cli().command {
        Command::Serve(settings) => settings,
        Command::Conformance(args) => {
            init_logging();
            return conformance(&args).await;
        }
        // A client: its stdout is its report, so no log.
        Command::Sync(args) => std::process::exit(stowage::client::sync(&args).await),
    };
    init_logging();
    let started = Instant::now();
    let bind = settings.bind;
    let token = settings.token.clone();
    let password = settings.password.take();
    // An empty `STOWAGE_PASSWORD=` (an unset variable in a compose file) must not open the
    // administrator's account to an empty password.
    if password.as_ref().is_some_and(|p| p.chars().count() < MIN_PASSWORD_CHARS) {
        anyhow::bail!("--password (STOWAGE_PASSWORD) must have at least {MIN_PASSWORD_CHARS} characters");
    }
    let app = App::start(settings).await?;

    match token {
        Some(t) => {
            app.store.bootstrap_user(&t)?;
        }
        None if !app.store.has_users()? => {
            let t = new_token();
            app.store.bootstrap_user(&t)?;
            // Printed once, at first start; set STOWAGE_TOKEN to choose it instead.
            println!("stowage: created user admin@stowage.local with API token {t}");
        }
        None => {}
    }
    if let Some(p) = password {
        app.store.set_first_user_password(&api::auth::hash_password(&p))?;
    }

    let listener = api::server::listen(bind).with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(%bind, startup_ms = started.elapsed().as_secs_f64() * 1e3, "stowage listening");
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    api::serve(listener, app, shutdown).await?;
    Ok(())
}
