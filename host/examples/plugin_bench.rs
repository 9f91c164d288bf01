//! Plugin runtime figures for `bench/plugin.sh`: for each adapter given, the time to compile it
//! (cold cache), to load it from the compiled-code cache, to instantiate it (fresh instance plus
//! the adapter's `open`), and the round trip of a trivial call (`blob-uri`) on a live instance.
//!
//! `cargo run --release -p stowage --example plugin_bench -- ADAPTER.wasm...`

use std::sync::Arc;
use std::time::{Duration, Instant};

use stowage::plugin::{Grant, Limits, Registry};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: plugin_bench ADAPTER.wasm...");
    let scratch = tempfile_dir()?;
    println!("{:<34} {:>11} {:>11} {:>14} {:>11}", "adapter", "compile ms", "cached ms", "instantiate ms", "call µs");
    for file in files {
        let bytes = std::fs::read(&file)?;
        let name = std::path::Path::new(&file).file_name().unwrap_or_default().to_string_lossy().into_owned();
        // Each adapter gets an empty cache, so the first load compiles.
        let cache = scratch.join(&name);
        let registry = Registry::new(&scratch, &cache, Limits::DEFAULT)?;
        let t = Instant::now();
        let adapter = registry.load(&bytes, &name).await?;
        let compile = t.elapsed();
        let t = Instant::now();
        let _again = registry.load(&bytes, &name).await?;
        let cached = t.elapsed();

        // Settings `open` accepts without I/O: defaults, a placeholder for required ones and an
        // endpoint (never contacted: `blob-uri` does no I/O).
        let settings: Vec<(String, String)> = adapter
            .info
            .settings
            .iter()
            .filter(|s| !s.secret)
            .filter_map(|s| match (&s.default, s.required) {
                (Some(serde_json::Value::String(v)), _) => Some((s.name.clone(), v.clone())),
                (Some(v), _) => Some((s.name.clone(), v.to_string())),
                (None, true) => Some((s.name.clone(), "bench".to_string())),
                (None, false) if s.name.ends_with("endpoint") => Some((s.name.clone(), "http://127.0.0.1:9".into())),
                (None, false) => None,
            })
            .collect();
        // Instantiate: a new session's first call creates the instance and opens the backend;
        // `blob-uri` itself is the cheapest call, measured next and subtracted.
        let session = || registry.session(Arc::clone(&adapter), Grant::default(), settings.clone(), vec![]);
        let mut live = session();
        live.blob_uri("warm-up").await?;
        const CALLS: u32 = 20_000;
        let t = Instant::now();
        for _ in 0..CALLS {
            live.blob_uri("a/b.json").await?;
        }
        let call = t.elapsed() / CALLS;
        const INSTANCES: u32 = 200;
        let t = Instant::now();
        for _ in 0..INSTANCES {
            session().blob_uri("a/b.json").await?;
        }
        let instantiate = (t.elapsed() / INSTANCES).saturating_sub(call);
        println!(
            "{name:<34} {:>11.1} {:>11.2} {:>14.3} {:>11.2}",
            ms(compile),
            ms(cached),
            ms(instantiate),
            call.as_secs_f64() * 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("stowage-plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
