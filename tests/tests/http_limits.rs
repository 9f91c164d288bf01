//! The HTTP server's limits, against the real binary over raw sockets: a slow header, a trickled
//! body and idle connections (new or kept alive) are closed within their timeouts, an oversized
//! body gets 413, and 20,000 idle connections leave `/health` answering within 1 s.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use stowage_tests::{Process, TOKEN, free_port};

/// Opens a connection, sends `first`, then `drip` every 500 ms, until the server closes it;
/// returns what the server sent and when it closed. Fails if it is still open after 15 s.
async fn until_closed(port: u16, first: &'static [u8], drip: Option<&'static [u8]>) -> (String, Duration) {
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        s.write_all(first).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < Duration::from_secs(15) {
            match s.read(&mut buf) {
                Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), start.elapsed()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (String::from_utf8_lossy(&got).into_owned(), start.elapsed());
                }
                Err(_) => {}
            }
            if let Some(d) = drip
                && s.write_all(d).is_err()
            {
                return (String::from_utf8_lossy(&got).into_owned(), start.elapsed());
            }
        }
        panic!("connection still open after 15 s; got {:?}", String::from_utf8_lossy(&got));
    })
    .await
    .unwrap()
}

fn within(what: &str, took: Duration, from: f64, to: f64) {
    let s = took.as_secs_f64();
    assert!((from..to).contains(&s), "{what}: closed after {s:.2} s, want {from}..{to} s");
}

#[tokio::test]
async fn slow_headers_trickled_bodies_and_idle_connections_are_closed_within_their_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let limits = ["--header-timeout", "2", "--request-timeout", "3", "--max-body-mib", "2"];
    let _service = Process::start(tmp.path(), port, &limits).await;

    let (got, took) = until_closed(port, b"", None).await;
    assert_eq!(got, "");
    within("a connection that sends nothing", took, 1.9, 3.0);

    let (got, took) = until_closed(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", Some(b"X-Slow: 1\r\n")).await;
    assert_eq!(got, "");
    within("a header sent a line every 500 ms", took, 1.9, 3.0);

    let trickled =
        b"POST /api/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Token 0123456789abcdef0123456789abcdef01234567\r\n\
Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let (got, took) = until_closed(port, trickled, Some(b" ")).await;
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    within("a body sent a byte every 500 ms", took, 2.9, 4.0);

    let (got, took) = until_closed(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", None).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with(r#"{"status":"UP"}"#), "{got}");
    within("a kept-alive connection left idle", took, 1.9, 3.0);

    // Bodies over --max-body-mib: 413 in Label Studio's error shape; under it, accepted.
    // No connection reuse: the server may close one after refusing a body it did not read.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let project = http
        .post(format!("{url}/api/projects"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&json!({"title": "limits"}))
        .send()
        .await
        .unwrap();
    let project: serde_json::Value = project.json().await.unwrap();
    let tasks = |n: usize| serde_json::to_vec(&vec![json!({"text": "x".repeat(1000)}); n]).unwrap();
    let import = |body: Vec<u8>| {
        http.post(format!("{url}/api/projects/{}/import", project["id"]))
            .header("Authorization", format!("Token {TOKEN}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let r = import(tasks(3000)).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["status_code"].as_u64(), body["detail"].as_str()),
        (Some(413), Some("Request body too large (limit: stowage serve --max-body-mib)"))
    );
    let r = import(tasks(1000)).await.unwrap();
    assert_eq!(r.status(), 201);
}

/// Holds `count` idle connections to `port` open from a child process (a process may hold
/// fewer sockets than the server's open-file limit); prints `ready` once they are open.
fn idle_clients(port: u16, count: usize) -> std::process::Child {
    let script = r#"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("ready", flush=True)
sys.stdin.read()
"#;
    std::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), &count.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs")
}

#[tokio::test]
async fn twenty_thousand_idle_connections_leave_health_answering_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    // A header timeout far above the time the clients take to connect, even on a loaded machine
    // (16 s was seen in CI with other work on both cores): every connection stays wanted.
    let _service = Process::start(tmp.path(), port, &["--header-timeout", "300"]).await;
    let mut clients: Vec<_> = (0..2).map(|_| idle_clients(port, 10_000)).collect();
    let opened = Instant::now();
    for c in &mut clients {
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
    }
    assert!(opened.elapsed() < Duration::from_secs(240), "opening took {:?}", opened.elapsed());
    for _ in 0..3 {
        let start = Instant::now();
        let r = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/health")).send().await.unwrap();
        assert_eq!(
            (r.status().as_u16(), start.elapsed() < Duration::from_secs(1)),
            (200, true),
            "{:?}",
            start.elapsed()
        );
    }
    for mut c in clients {
        drop(c.stdin.take());
        c.wait().unwrap();
    }
    let log = std::fs::read_to_string(tmp.path().join("service.log")).unwrap();
    assert!(!log.contains("Too many open files"), "the service ran out of file descriptors");
}
