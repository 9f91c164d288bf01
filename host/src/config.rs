//! The command line: `stowage serve` settings (each flag also read from a `STOWAGE_*` environment
//! variable) and the arguments of the other subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The `stowage` command line.
#[derive(Parser, Debug)]
#[command(
    name = "stowage",
    version,
    about = "Label-Studio-compatible storage sync with sandboxed WebAssembly adapters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `stowage` subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the REST API service.
    Serve(Settings),
    /// Run the adapter conformance suite on one adapter component; exits 1 when a check fails.
    Conformance(ConformanceArgs),
    /// Sync one storage of a running service and wait for the run to end; exits 0 when it
    /// completed, 2 when it completed with errors, 1 when it failed or the request did.
    Sync(SyncArgs),
}

/// `stowage conformance ADAPTER.wasm [--setting NAME=VALUE]... [--seed-dir DIR]`: the adapter is
/// opened as an export storage when it can write (the suite seeds through it), else as an import
/// storage whose files the suite writes into `--seed-dir`. The storage must start empty.
#[derive(clap::Args, Debug, Clone)]
pub struct ConformanceArgs {
    /// The adapter component (`.wasm`, wasm32-wasip2).
    pub adapter: PathBuf,

    /// A storage setting or secret, `NAME=VALUE` (names from the adapter's manifest); repeatable.
    #[arg(long = "setting", value_name = "NAME=VALUE")]
    pub setting: Vec<String>,

    /// The empty folder the storage serves: seeded with the test tree when the adapter cannot
    /// write, and where empty folders are made.
    #[arg(long)]
    pub seed_dir: Option<PathBuf>,

    /// Root for directory settings (as `stowage serve --document-root`).
    #[arg(long)]
    pub document_root: Option<PathBuf>,

    /// Let the adapter reach loopback and private addresses (a test server on 127.0.0.1).
    #[arg(long)]
    pub allow_private_addresses: bool,

    /// Deadline of one adapter call, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub call_timeout_ms: u64,

    /// Memory cap of the adapter instance, in MiB.
    #[arg(long, default_value_t = 256)]
    pub adapter_memory_mib: u64,

    /// Compiled-code cache directory; a temporary one by default.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// `stowage sync [--url URL] --token TOKEN --type TYPE [--export] ID`: a client of a running
/// service (see [`crate::client`]), not a setting of it.
#[derive(clap::Args, Clone)]
pub struct SyncArgs {
    /// Base URL of the service (`stowage serve --bind`'s default address by default).
    #[arg(long, env = "STOWAGE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// API token, sent as `Authorization: Token TOKEN`; never printed.
    #[arg(long, env = "STOWAGE_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Storage type, the API path segment: `s3`, `gcs`, `azure`, `redis`, `localfiles`, ...
    #[arg(long = "type", value_name = "TYPE")]
    pub storage_type: String,

    /// Sync the export storage `ID` (`/api/storages/export/TYPE/ID`) instead of the import one.
    #[arg(long)]
    pub export: bool,

    /// Time between two status requests, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub interval_ms: u64,

    /// The storage id.
    pub id: i64,
}

/// Shows everything but the token.
impl std::fmt::Debug for SyncArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncArgs")
            .field("url", &self.url)
            .field("storage_type", &self.storage_type)
            .field("export", &self.export)
            .field("interval_ms", &self.interval_ms)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Everything `stowage serve` is configured with. The names are a contract: scripts outside the
/// repository start the service with these flags and variables.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "STOWAGE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for the SQLite database and the compiled-adapter cache. Created if missing.
    #[arg(long, env = "STOWAGE_DATA_DIR", default_value = "./stowage-data")]
    pub data_dir: PathBuf,

    /// Where compiled adapter code is cached (keyed by content hash and engine, so it may be
    /// shared). Default: `adapter-cache` under the data directory.
    #[arg(long, env = "STOWAGE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Directory whose `*.wasm` files are loaded as storage adapters at start (and, with
    /// `--watch-adapters`, whenever one is added or replaced).
    #[arg(long, env = "STOWAGE_ADAPTERS_DIR", default_value = "./adapters")]
    pub adapters_dir: PathBuf,

    /// Storage types whose adapters may be loaded, comma-separated (e.g. `s3,localfiles`); empty
    /// (the default) allows every adapter. Others are refused at start, upload and watch.
    #[arg(long, env = "STOWAGE_ALLOWED_ADAPTERS", value_delimiter = ',')]
    pub allowed_adapters: Vec<String>,

    /// Hosts adapters may reach, comma-separated patterns: `host`, `host:port` or `*.domain`
    /// (e.g. `*.amazonaws.com,minio.internal:9000`). A storage's grant (its endpoint, or the
    /// adapter's default hosts) is narrowed to these; empty (the default) allows every host a
    /// grant names. Loopback and private addresses also need `--allow-private-addresses`.
    #[arg(long, env = "STOWAGE_ALLOWED_HOSTS", value_delimiter = ',', value_parser = parse_host_pattern)]
    pub allowed_hosts: Vec<crate::plugin::grants::HostRule>,

    /// Load adapter files added to or replaced in the adapters directory while running.
    #[arg(long, env = "STOWAGE_WATCH_ADAPTERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_adapters: bool,

    /// Root under which local-files storages may point and files are served from
    /// `/data/local-files/`. Unset (the default) refuses local-files storages: Label Studio's
    /// default of `/` exposes the whole server.
    #[arg(long, env = "STOWAGE_DOCUMENT_ROOT")]
    pub document_root: Option<PathBuf>,

    /// API token of the first user, created at first start. When unset, a random token is
    /// generated and printed once.
    #[arg(long, env = "STOWAGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Password of the first user (`admin@stowage.local`) for the web page's sign-in with email
    /// and password, set at every start (stored as an argon2 hash). When unset, the stored one
    /// stays; a user without one signs in with an API token.
    #[arg(long, env = "STOWAGE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Deadline of one adapter call, in milliseconds.
    #[arg(long, env = "STOWAGE_CALL_TIMEOUT_MS", default_value_t = 30_000)]
    pub call_timeout_ms: u64,

    /// Let adapters connect to loopback, private, link-local and other reserved addresses
    /// (e.g. an S3 server on 127.0.0.1). Off by default: storage endpoints are user input, and
    /// reaching internal services or the cloud metadata service through them is SSRF. The
    /// counterpart of Label Studio's `SSRF_PROTECTION_ENABLED=false`.
    #[arg(long, env = "STOWAGE_ALLOW_PRIVATE_ADDRESSES")]
    pub allow_private_addresses: bool,

    /// Server environment variables that may fill empty storage credentials, comma-separated
    /// (e.g. `AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY`); an adapter names the variable it wants
    /// for a setting, and gets it only if it is listed here. Empty by default: with it, every
    /// project member can use the server's own identity (Label Studio does so unconditionally).
    #[arg(long, env = "STOWAGE_AMBIENT_CREDENTIALS", value_delimiter = ',')]
    pub ambient_credentials: Vec<String>,

    /// Memory cap of one adapter instance, in MiB.
    #[arg(long, env = "STOWAGE_ADAPTER_MEMORY_MIB", default_value_t = 256)]
    pub adapter_memory_mib: u64,

    /// Largest answer accepted from one adapter call (an object body, a listing page), in MiB.
    #[arg(long, env = "STOWAGE_MAX_RESPONSE_MIB", default_value_t = 64)]
    pub max_response_mib: u64,

    /// Calls an adapter broke for one storage within 5 minutes (a crash, or spinning past the
    /// deadline) after which that storage's calls are refused until the failures age out, its
    /// settings change or a new adapter version is installed; other storages of the adapter go
    /// on. 0 never quarantines.
    #[arg(long, env = "STOWAGE_QUARANTINE_AFTER", default_value_t = 10)]
    pub quarantine_after: u32,

    /// Sync runs executed at once; more requests wait `queued` (Label Studio's RQ workers).
    #[arg(long, env = "STOWAGE_SYNC_WORKERS", default_value_t = crate::sync::DEFAULT_WORKERS)]
    pub sync_workers: usize,

    /// Seconds a client has to send a complete request header, from opening the connection or
    /// from the previous response; the connection is closed after it (slow headers, idle
    /// keep-alive connections).
    #[arg(long, env = "STOWAGE_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds from a request's header to its response, reading the body included; 408 after
    /// it. Streamed response bodies are not limited.
    #[arg(long, env = "STOWAGE_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,

    /// Largest request body, in MiB (a task file imported through the API); 413 beyond it.
    /// Label Studio allows 250 MB (`DATA_UPLOAD_MAX_MEMORY_SIZE`); parsed JSON takes several
    /// times its size in memory, so the default is lower.
    #[arg(long, env = "STOWAGE_MAX_BODY_MIB", default_value_t = 100)]
    pub max_body_mib: u64,

    /// Proxied object reads (`presign: false`) streaming at once; more get 503 with
    /// `Retry-After`. Each holds about two 256 KiB chunks.
    #[arg(long, env = "STOWAGE_MAX_PROXY_STREAMS", default_value_t = 64)]
    pub max_proxy_streams: usize,

    /// Client connections open at once; at the cap the longest idle one is closed to make room.
    /// Default: the open-file limit (raised to its hard limit) less 1,024.
    #[arg(long, env = "STOWAGE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

fn parse_host_pattern(raw: &str) -> Result<crate::plugin::grants::HostRule, String> {
    crate::plugin::grants::HostRule::pattern(raw)
}

impl Settings {
    /// The adapter limits these settings give.
    pub fn limits(&self) -> crate::plugin::Limits {
        crate::plugin::Limits {
            call_timeout: std::time::Duration::from_millis(self.call_timeout_ms),
            memory_bytes: (self.adapter_memory_mib as usize) << 20,
            max_response_bytes: (self.max_response_mib as usize) << 20,
            quarantine_after: self.quarantine_after,
        }
    }

    /// The HTTP server's limits these settings give.
    pub fn http_limits(&self) -> crate::api::server::Limits {
        crate::api::server::Limits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            max_connections: self.max_connections.unwrap_or_else(crate::api::server::default_max_connections),
        }
    }

    /// What these settings allow every storage's sessions.
    pub fn policy(&self) -> crate::plugin::Policy {
        crate::plugin::Policy {
            document_root: self.document_root.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            allow_private_addresses: self.allow_private_addresses,
            ambient_credentials: self.ambient_credentials.clone(),
        }
    }
}
