//! `stowage serve`: settings -> App (database, adapters) -> api::router -> HTTP.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rand::Rng;

use stowage::config::{Cli, Command};
use stowage::{App, api};

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let settings = match Cli::parse().command {
        Command::Serve(settings) => settings,
        Command::Conformance(args) => return conformance(&args).await,
    };
    let started = Instant::now();
    let bind = settings.bind;
    let token = settings.token.clone();
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

    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
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
