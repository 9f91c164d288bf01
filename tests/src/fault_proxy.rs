//! A small HTTP/1.1 proxy that puts faults between an adapter and a test server: it answers a
//! share of requests `503 SlowDown` with `Retry-After`, resets a share of connections without an
//! answer, cuts a share of listing responses short, and refuses chosen keys with `403`. Every
//! fault is counted, so a test can check that each kind really happened.
//!
//! It forwards each request's bytes unchanged (SigV4 signatures cover the `Host` the client
//! sent, which the server then sees as is) on a fresh upstream connection, one request per
//! client connection: the answer carries `Connection: close`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to inject, as shares of requests in per mille (1/1000).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Requests answered `503 SlowDown` (with `Retry-After: retry_after_s`).
    pub slow_down_permille: u32,
    /// `Retry-After` of the 503 answers, seconds.
    pub retry_after_s: u32,
    /// Connections reset (RST) after the request is read, before any answer.
    pub reset_permille: u32,
    /// Listing answers (`?list-type=2`) cut after half their body, then the connection closed.
    pub truncate_list_permille: u32,
    /// Requests whose path contains this are refused `403 AccessDenied`, every time.
    pub deny_path_containing: Option<String>,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicU64,
    pub slowed: AtomicU64,
    pub reset: AtomicU64,
    pub truncated: AtomicU64,
    pub denied: AtomicU64,
    pub forwarded: AtomicU64,
}

/// A running proxy; it stops with the test's runtime.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: use it as the storage's endpoint.
    pub endpoint: String,
    pub counts: Arc<Counts>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let shared = Arc::new((upstream, faults, counts.clone()));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let (upstream, faults, counts) = &*shared;
                    let _ = handle(client, upstream, faults, counts).await;
                });
            }
        });
        FaultProxy { endpoint, counts }
    }

    /// The count of one kind (`c.slowed` etc.).
    pub fn get(&self, of: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        of(&self.counts).load(Ordering::Relaxed)
    }
}

/// A fault chosen for one request, by a counter-driven hash: spread evenly yet reproducible
/// enough, with no random crate in the tests.
fn roll(n: u64, salt: u64) -> u32 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 1000) as u32
}

/// Reads an HTTP head (up to the blank line) and what came after it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// The head with `Connection: close` in place of any `Connection` header.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> =
        head.trim_end().split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

async fn handle(mut client: TcpStream, upstream: &str, faults: &Faults, counts: &Counts) -> std::io::Result<()> {
    let Some((head, mut body)) = read_head(&mut client).await? else { return Ok(()) };
    let head = String::from_utf8_lossy(&head).into_owned();
    let want = content_length(&head);
    while body.len() < want {
        let mut chunk = vec![0u8; want - body.len()];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let n = counts.requests.fetch_add(1, Ordering::Relaxed);
    let target = head.split(' ').nth(1).unwrap_or("");
    if faults.deny_path_containing.as_deref().is_some_and(|p| target.contains(p)) {
        counts.denied.fetch_add(1, Ordering::Relaxed);
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        return client.write_all(answer.as_bytes()).await;
    }
    if roll(n, 1) < faults.slow_down_permille {
        counts.slowed.fetch_add(1, Ordering::Relaxed);
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let answer = format!(
            "HTTP/1.1 503 Slow Down\r\nRetry-After: {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            faults.retry_after_s,
            xml.len()
        );
        return client.write_all(answer.as_bytes()).await;
    }
    if roll(n, 2) < faults.reset_permille {
        counts.reset.fetch_add(1, Ordering::Relaxed);
        // A zero linger sends RST at once (the deprecation is about non-zero ones blocking on drop).
        #[allow(deprecated)]
        client.set_linger(Some(std::time::Duration::ZERO))?;
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(closing(&head).as_bytes()).await?;
    server.write_all(&body).await?;
    let Some((answer_head, mut answer)) = read_head(&mut server).await? else { return Ok(()) };
    server.read_to_end(&mut answer).await?;
    let answer_head = String::from_utf8_lossy(&answer_head).into_owned();
    let listing = target.contains("list-type=2") && answer_head.starts_with("HTTP/1.1 200");
    if listing && roll(n, 3) < faults.truncate_list_permille && answer.len() > 1 {
        counts.truncated.fetch_add(1, Ordering::Relaxed);
        client.write_all(closing(&answer_head).as_bytes()).await?;
        client.write_all(&answer[..answer.len() / 2]).await?;
        return client.shutdown().await;
    }
    counts.forwarded.fetch_add(1, Ordering::Relaxed);
    client.write_all(closing(&answer_head).as_bytes()).await?;
    client.write_all(&answer).await?;
    client.shutdown().await
}
