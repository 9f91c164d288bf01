//! The V4 signer against Google's published conformance vectors (`tests/data/v4_signatures.json`,
//! from googleapis/conformance-tests; `tests/data/README.md` lists the cases left out and why):
//! every signed URL must equal the expected URL exactly.

use serde_json::Value;
use stowage_adapter_gcs::config::ServiceAccount;
use stowage_adapter_gcs::sign::{UrlRequest, signed_url};
use stowage_sdk::http::{Endpoint, encode_key};
use stowage_sdk::time::rfc3339_millis;

const VECTORS: &str = include_str!("data/v4_signatures.json");
const KEY: &str = include_str!("data/test_service_account.json");

/// The host a case addresses: Google, or the endpoint its host fields name (the adapter's `gcs_endpoint`).
fn endpoint(case: &Value) -> Endpoint {
    let text = |k: &str| case[k].as_str().map(str::to_string);
    let url = text("clientEndpoint")
        .or_else(|| text("emulatorHostname"))
        .or_else(|| text("hostname").map(|h| format!("{}://{h}", text("scheme").unwrap_or_else(|| "https".into()))))
        .or_else(|| text("universeDomain").map(|d| format!("https://storage.{d}")))
        .unwrap_or_else(|| "https://storage.googleapis.com".into());
    Endpoint::parse(&url).unwrap()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
        .unwrap_or_default()
}

#[test]
fn signed_urls_match_googles_conformance_vectors() {
    let account = ServiceAccount::parse(KEY).unwrap();
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let cases = vectors["signingV4Tests"].as_array().unwrap();
    assert_eq!(cases.len(), 19);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["description"].as_str().unwrap();
        let endpoint = endpoint(case);
        let path = format!("/{}/{}", case["bucket"].as_str().unwrap(), encode_key(case["object"].as_str().unwrap()));
        let headers = pairs(&case["headers"]);
        let query = pairs(&case["queryParameters"]);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = UrlRequest {
            method: case["method"].as_str().unwrap(),
            https: endpoint.https,
            authority: &endpoint.authority,
            path: &path,
            query: &query,
            headers: &headers,
        };
        let now = rfc3339_millis(case["timestamp"].as_str().unwrap()).unwrap() / 1000;
        let expires = case["expiration"].as_u64().unwrap() as u32;
        let url = signed_url(&request, &account.client_email, &account.signer, now, expires).unwrap();
        if url != case["expectedUrl"].as_str().unwrap() {
            failures.push(format!("{name}:\n  got      {url}\n  expected {}", case["expectedUrl"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
