//! `stowage serve`: settings -> App (database, adapters) -> api::router -> HTTP.

use std::sync::Arc;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let Command::Serve(settings) = Cli::parse().command;
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
    api::serve(listener, Arc::new(app), shutdown).await?;
    Ok(())
}
