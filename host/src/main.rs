//! `stowage serve`: settings -> App (database, adapters) -> api::router -> HTTP.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::ServiceExt;
use clap::Parser;
use rand::Rng;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;

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
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()))
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

    let app = Arc::new(app);
    let router = api::router(app).layer(TraceLayer::new_for_http());
    // Label Studio treats `/api/x` and `/api/x/` alike; match routes without the slash.
    let service = NormalizePathLayer::trim_trailing_slash().layer(router);
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(%bind, startup_ms = started.elapsed().as_secs_f64() * 1e3, "stowage listening");
    axum::serve(listener, ServiceExt::<axum::extract::Request>::into_make_service(service))
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        })
        .await?;
    Ok(())
}
