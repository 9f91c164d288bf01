//! Azure Storage signatures: SharedKey `Authorization` headers for API calls and service SAS
//! tokens for presigned blob URLs. Both are HMAC-SHA256 with the base64-decoded account key over a
//! documented string-to-sign; pure functions of (request, key, time), so they run and are tested
//! natively.
//!
//! - SharedKey: <https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key>
//!   (Blob service, version 2015-02-21 and later).
//! - Service SAS: <https://learn.microsoft.com/en-us/rest/api/storageservices/create-service-sas>
//!   (version 2020-12-06 and later: the string-to-sign has `signedEncryptionScope`).
//!
//! Paths passed in are already encoded ([`stowage_sdk::http::encode_key`]); query parameters are
//! given decoded, as (name, value) pairs.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stowage_sdk::http::encode_value;
use stowage_sdk::time::rfc3339_seconds;

/// The REST API version stowage speaks (`x-ms-version`) and signs SAS tokens for (`sv`).
pub const API_VERSION: &str = "2021-08-06";

/// The standard headers of the SharedKey string-to-sign, in order (one line each, empty if absent).
const STANDARD_HEADERS: [&str; 11] = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
];

/// `base64(HMAC-SHA256(key, message))`.
pub fn hmac_base64(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Runs of whitespace folded into one space and the ends trimmed (the doc's "unfold" rule).
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// CanonicalizedHeaders: every `x-ms-` header, name lowercased, sorted by name, as `name:value\n`
/// (values of a repeated name joined with `,`).
pub fn canonicalized_headers(headers: &[(String, String)]) -> String {
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), unfold(v)))
        .collect();
    ms.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    let mut i = 0;
    while i < ms.len() {
        let name = &ms[i].0;
        let values: Vec<&str> = ms[i..].iter().take_while(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
        out.push_str(&format!("{name}:{}\n", values.join(",")));
        i += values.len();
    }
    out
}

/// CanonicalizedResource (2009-09-19 and later): `/{account}{encoded path}`, then per query
/// parameter, sorted by lowercased name, `\n{name}:{values}` (a repeated name's values sorted and
/// joined with `,`). For Azurite's path-style URLs the path starts with `/{account}` itself, so the
/// account appears twice (`/acct/acct/container/blob`), as Azure's own SDKs sign it.
pub fn canonicalized_resource(account: &str, path: &str, query: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, &str)> = query.iter().map(|(k, v)| (k.to_ascii_lowercase(), *v)).collect();
    params.sort();
    let mut out = format!("/{account}{path}");
    let mut i = 0;
    while i < params.len() {
        let name = params[i].0.clone();
        let values: Vec<&str> = params[i..].iter().take_while(|(k, _)| *k == name).map(|(_, v)| *v).collect();
        out.push_str(&format!("\n{name}:{}", values.join(",")));
        i += values.len();
    }
    out
}

/// The SharedKey string-to-sign of a Blob service request: the verb, the 11 standard headers
/// (`Content-Length` empty when 0, as required since version 2015-02-21; `Date` empty because
/// `x-ms-date` is sent), the canonicalized headers and the canonicalized resource.
pub fn string_to_sign(
    method: &str,
    headers: &[(String, String)],
    account: &str,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let mut out = String::from(method);
    out.push('\n');
    for name in STANDARD_HEADERS {
        let value = header(headers, name).map(str::trim).unwrap_or("");
        let value = if name == "content-length" && value == "0" { "" } else { value };
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(account, path, query));
    out
}

/// The `Authorization` header value: `SharedKey {account}:{signature}`.
pub fn authorization(
    account: &str,
    key: &[u8],
    method: &str,
    headers: &[(String, String)],
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let signature = hmac_base64(key, &string_to_sign(method, headers, account, path, query));
    format!("SharedKey {account}:{signature}")
}

/// A service SAS for one blob (`sr=b`).
#[derive(Debug, Clone)]
pub struct BlobSas<'a> {
    pub account: &'a str,
    pub container: &'a str,
    /// The blob name, not encoded.
    pub blob: &'a str,
    /// `sp`: `r` to read, `cw` to create or write.
    pub permissions: &'a str,
    /// `st`: when the token starts being valid, written `2009-10-12T17:50:30Z`; `None` omits it
    /// (valid from creation).
    pub start: Option<SystemTime>,
    /// `se`: when the token expires.
    pub expiry: SystemTime,
    /// `spr`: `https` or `https,http`.
    pub protocol: &'a str,
}

impl BlobSas<'_> {
    /// The string-to-sign of a service SAS, version 2020-12-06 and later (16 lines: `sp`, `st`, `se`,
    /// `/blob/{account}/{container}/{blob}`, `si`, `sip`, `spr`, `sv`, `sr`, snapshot time, `ses`,
    /// then `rscc`, `rscd`, `rsce`, `rscl`, `rsct`). Unused fields are empty lines.
    pub fn string_to_sign(&self) -> String {
        let start = self.start.map(rfc3339_seconds).unwrap_or_default();
        let resource = format!("/blob/{}/{}/{}", self.account, self.container, self.blob);
        [
            self.permissions,
            &start,
            &rfc3339_seconds(self.expiry),
            &resource,
            "", // si: no stored access policy
            "", // sip: any address
            self.protocol,
            API_VERSION,
            "b", // sr: a blob
            "",  // snapshot time
            "",  // ses: no encryption scope
            "",  // rscc
            "",  // rscd
            "",  // rsce
            "",  // rscl
            "",  // rsct
        ]
        .join("\n")
    }

    /// The token (without `?`): `sv`, `st`, `se`, `sr`, `sp`, `spr`, `sig`, values percent-encoded.
    pub fn token(&self, key: &[u8]) -> String {
        let signature = hmac_base64(key, &self.string_to_sign());
        let mut params: Vec<(&str, String)> = vec![("sv", API_VERSION.to_string())];
        if let Some(start) = self.start {
            params.push(("st", rfc3339_seconds(start)));
        }
        params.extend([
            ("se", rfc3339_seconds(self.expiry)),
            ("sr", "b".to_string()),
            ("sp", self.permissions.to_string()),
            ("spr", self.protocol.to_string()),
            ("sig", signature),
        ]);
        params.iter().map(|(k, v)| format!("{k}={}", encode_value(v))).collect::<Vec<_>>().join("&")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The account key of the vectors: base64 of the 21 bytes `secret-key-0123456789`.
    const KEY: &[u8] = b"secret-key-0123456789";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The canonicalized-resource examples of the SharedKey doc.
    #[test]
    fn canonicalized_resources_of_the_doc() {
        assert_eq!(
            canonicalized_resource("myaccount", "/mycontainer", &[("restype", "container"), ("comp", "metadata")]),
            "/myaccount/mycontainer\ncomp:metadata\nrestype:container"
        );
        assert_eq!(
            canonicalized_resource(
                "myaccount",
                "/mycontainer",
                &[
                    ("restype", "container"),
                    ("comp", "list"),
                    ("include", "snapshots"),
                    ("include", "metadata"),
                    ("include", "uncommittedblobs")
                ]
            ),
            "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container"
        );
        // Azurite's path-style URL carries the account in the path too.
        assert_eq!(canonicalized_resource("acct", "/acct/c/a%20b.txt", &[]), "/acct/acct/c/a%20b.txt");
        // Values are signed decoded (`prefix=a b/`, sent as `a%20b%2F`).
        assert_eq!(
            canonicalized_resource("a", "/c", &[("Prefix", "a b/"), ("delimiter", "/")]),
            "/a/c\ndelimiter:/\nprefix:a b/"
        );
    }

    #[test]
    fn canonicalized_header_rules() {
        let h = headers(&[
            ("X-MS-Version", "2021-08-06"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("Content-Type", "text/plain"),
            ("x-ms-meta-b", "  two   words "),
            ("x-ms-meta-a", "1"),
            ("x-ms-meta-a", "2"),
        ]);
        assert_eq!(
            canonicalized_headers(&h),
            "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-meta-a:1,2\nx-ms-meta-b:two words\nx-ms-version:2021-08-06\n"
        );
    }

    /// A Put Blob request: the exact string-to-sign, and its signature as Python computes it:
    /// `base64.b64encode(hmac.new(b"secret-key-0123456789", sts.encode(), hashlib.sha256).digest())`.
    #[test]
    fn shared_key_vector() {
        let h = headers(&[
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-version", "2021-08-06"),
            ("x-ms-blob-type", "BlockBlob"),
            ("content-type", "application/json"),
            ("content-length", "11"),
        ]);
        let sts = string_to_sign("PUT", &h, "acct", "/acct/stowage-test/dir/a%20b.json", &[]);
        assert_eq!(
            sts,
            "PUT\n\n\n11\n\napplication/json\n\n\n\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2021-08-06\n/acct/acct/stowage-test/dir/a%20b.json"
        );
        assert_eq!(hmac_base64(KEY, &sts), "VxAHL1kIp1n9SSxdUfbteeIVJKxHUxnzGDP8ojminyE=");
        assert_eq!(
            authorization("acct", KEY, "PUT", &h, "/acct/stowage-test/dir/a%20b.json", &[]),
            "SharedKey acct:VxAHL1kIp1n9SSxdUfbteeIVJKxHUxnzGDP8ojminyE="
        );
    }

    /// A List Blobs request: `Content-Length` 0 is an empty line, query parameters are signed.
    #[test]
    fn shared_key_list_vector() {
        let h = headers(&[
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-version", "2021-08-06"),
            ("content-length", "0"),
        ]);
        let query = [("restype", "container"), ("comp", "list"), ("prefix", "a/"), ("maxresults", "1000")];
        let sts = string_to_sign("GET", &h, "myaccount", "/mycontainer", &query);
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2021-08-06\n/myaccount/mycontainer\ncomp:list\nmaxresults:1000\nprefix:a/\nrestype:container"
        );
        assert_eq!(hmac_base64(KEY, &sts), "YVMWVsiSyFrRN6cX01K9qpOpoMy3eMquS9X4ZuElyL4=");
    }

    /// A read SAS: the 16-line string-to-sign of version 2020-12-06+, and the token (signature as
    /// Python's `hmac` computes it over that string with the same key).
    #[test]
    fn service_sas_vector() {
        let sas = BlobSas {
            account: "acct",
            container: "stowage-test",
            blob: "dir/a b.json",
            permissions: "r",
            start: Some(UNIX_EPOCH + Duration::from_secs(1_255_369_830)),
            expiry: UNIX_EPOCH + Duration::from_secs(1_255_370_130),
            protocol: "https,http",
        };
        assert_eq!(
            sas.string_to_sign(),
            "r\n2009-10-12T17:50:30Z\n2009-10-12T17:55:30Z\n/blob/acct/stowage-test/dir/a b.json\n\n\nhttps,http\n2021-08-06\nb\n\n\n\n\n\n\n"
        );
        assert_eq!(
            sas.token(KEY),
            "sv=2021-08-06&st=2009-10-12T17%3A50%3A30Z&se=2009-10-12T17%3A55%3A30Z&sr=b&sp=r&spr=https%2Chttp&sig=%2F746fxjTFmXoJsTucbwTRBX78QKp%2FO2CdUodtT6RyCI%3D"
        );
        let no_start = BlobSas { start: None, ..sas };
        assert!(no_start.string_to_sign().starts_with("r\n\n2009-10-12T17:55:30Z\n"));
        assert!(!no_start.token(KEY).contains("st="));
    }
}
