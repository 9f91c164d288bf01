//! Requests to the Blob service: addressing, the `x-ms-*` headers, SharedKey or SAS authorisation,
//! and presigned URLs; the transport is `stowage_sdk::http`.

use std::time::{Duration, SystemTime};

use stowage_sdk::http::{Response, encode_key, query_string};
use stowage_sdk::object_store::blob_uri;
use stowage_sdk::{Error, Method};

use crate::SCHEME;
use crate::config::{Auth, AzureConfig, EndpointSource};
use crate::sign::{self, API_VERSION, BlobSas};

/// How far back a SAS start time (`st`) is set, so a server whose clock runs behind still accepts
/// a fresh URL (Microsoft recommends up to 15 minutes of skew tolerance).
pub const CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// A configured Blob service client for one storage.
pub struct Client {
    pub config: AzureConfig,
}

/// `unsupported`, the answer of [`Client::presign`] for a storage with only a SAS token: the URL
/// would carry the user's own token to every annotator's browser.
pub const SAS_PRESIGN: &str = "presigned URLs need an account key; a SAS-token storage is served through stowage";

impl Client {
    /// A client for `config`. No I/O.
    pub fn new(config: AzureConfig) -> Client {
        Client { config }
    }

    /// Path of the container: `{base}/{container}` (`/stowageacct/stowage-test` on Azurite).
    pub fn container_path(&self) -> String {
        format!("{}/{}", self.config.endpoint.base_path, self.config.container)
    }

    /// Path of a blob, `key` raw (encoded here once, `/` kept).
    pub fn blob_path(&self, key: &str) -> String {
        format!("{}/{}", self.container_path(), encode_key(key))
    }

    /// `azure-blob://{container}/{key}`: how objects are named in messages.
    pub fn what(&self, key: &str) -> String {
        blob_uri(SCHEME, &self.config.container, key)
    }

    /// Adds `x-ms-date`, `x-ms-version` and `Content-Length` (PUT), authorises the request (a
    /// SharedKey signature, or the SAS token appended to the query) and sends it. `path` is
    /// encoded; `query` holds decoded (name, value) pairs. Any HTTP status is a response; only a
    /// transport failure is an error.
    pub fn send(
        &self,
        method: &'static str,
        path: String,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Response, Error> {
        headers.push(("x-ms-date".into(), stowage_sdk::time::http_date(SystemTime::now())));
        headers.push(("x-ms-version".into(), API_VERSION.into()));
        if matches!(method, "PUT" | "POST") {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let mut path_and_query = format!("{path}{}", query_string(query));
        match &self.config.auth {
            Auth::SharedKey { account, key } => {
                let authorization = sign::authorization(account, key, method, &headers, &path, query);
                headers.push(("authorization".into(), authorization));
            }
            Auth::Sas(token) => {
                path_and_query.push(if query.is_empty() { '?' } else { '&' });
                path_and_query.push_str(token);
            }
            Auth::Anonymous => {}
        }
        let request = self.config.endpoint.request(method, path_and_query, headers, body);
        stowage_sdk::http::send(&request).map_err(|e| self.explain_refusal(e))
    }

    /// A refused request whose endpoint is not `azure_endpoint` was most likely refused by the
    /// grant (only `*.blob.core.windows.net` is reachable without `azure_endpoint`): say so.
    fn explain_refusal(&self, error: Error) -> Error {
        match (error, self.config.endpoint_source) {
            (Error::Denied(message), EndpointSource::ConnectionString) => Error::Denied(format!(
                "{message}: without azure_endpoint only *.blob.core.windows.net may be reached; set azure_endpoint to \
                 the connection string's BlobEndpoint"
            )),
            (Error::Denied(message), EndpointSource::Account)
                if !self.config.endpoint.authority.ends_with(".blob.core.windows.net") =>
            {
                Error::Denied(format!(
                    "{message}: without azure_endpoint only *.blob.core.windows.net may be reached; set azure_endpoint \
                     to {}",
                    self.config.endpoint.url()
                ))
            }
            (error, _) => error,
        }
    }

    /// A URL that grants `method` on `key` for `ttl` (at least 1 s):
    /// - with an account key, `{endpoint}/{container}/{blob}?{service SAS}` (`sp=r` for GET,
    ///   `sp=cw` for PUT; `st` 15 minutes back for clock skew; `spr=https` on an https endpoint);
    /// - anonymous, the plain blob URL (public containers).
    ///
    /// # Errors
    /// `unsupported` ([`SAS_PRESIGN`]) with only a SAS token: a URL would have to carry the user's
    /// own token (write-only, like the other credentials), so the host serves such objects itself.
    pub fn presign(&self, method: Method, key: &str, ttl: Duration) -> Result<String, Error> {
        let url = format!("{}{}", self.config.endpoint.origin(), self.blob_path(key));
        match &self.config.auth {
            Auth::SharedKey { account, key: account_key } => {
                let now = SystemTime::now();
                let sas = BlobSas {
                    account,
                    container: &self.config.container,
                    blob: key,
                    permissions: match method {
                        Method::Get => "r",
                        Method::Put => "cw",
                    },
                    start: now.checked_sub(CLOCK_SKEW),
                    expiry: now + ttl.max(Duration::from_secs(1)),
                    protocol: if self.config.endpoint.https { "https" } else { "https,http" },
                };
                Ok(format!("{url}?{}", sas.token(account_key)))
            }
            Auth::Sas(_) => Err(Error::Unsupported(SAS_PRESIGN.into())),
            Auth::Anonymous => Ok(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_sdk::Config;

    fn client(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Client {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Client::new(AzureConfig::from_config(&Config { settings: own(settings), secrets: own(secrets) }).unwrap())
    }

    const KEY: &str = "c2VjcmV0LWtleS0wMTIzNDU2Nzg5";

    #[test]
    fn addressing() {
        let c = client(&[("container", "images")], &[("account_name", "acct"), ("account_key", KEY)]);
        assert_eq!(c.container_path(), "/images");
        assert_eq!(c.blob_path("dir/a b#1+%.jpg"), "/images/dir/a%20b%231%2B%25.jpg");
        let c = client(
            &[("container", "images"), ("azure_endpoint", "http://127.0.0.1:10000/acct")],
            &[("account_name", "acct"), ("account_key", KEY)],
        );
        assert_eq!(c.blob_path("k"), "/acct/images/k");
        assert_eq!(c.what("k"), "azure-blob://images/k");
    }

    /// Key-signed presigned URLs are service SAS on the storage's endpoint; https endpoints are
    /// https-only.
    #[test]
    fn presigned_urls() {
        let c = client(&[("container", "images")], &[("account_name", "acct"), ("account_key", KEY)]);
        let url = c.presign(Method::Get, "a b.png", Duration::from_secs(60)).unwrap();
        assert!(url.starts_with("https://acct.blob.core.windows.net/images/a%20b.png?sv=2021-08-06&st="), "{url}");
        assert!(url.contains("&sr=b&sp=r&spr=https&sig="), "{url}");
        let url = c.presign(Method::Put, "x.json", Duration::from_secs(60)).unwrap();
        assert!(url.contains("&sp=cw&"), "{url}");

        let c = client(
            &[("container", "images"), ("azure_endpoint", "http://127.0.0.1:10000/acct")],
            &[("account_name", "acct"), ("account_key", KEY)],
        );
        let url = c.presign(Method::Get, "k", Duration::from_secs(60)).unwrap();
        assert!(url.starts_with("http://127.0.0.1:10000/acct/images/k?sv="), "{url}");
        assert!(url.contains("&spr=https%2Chttp&"), "{url}");
        assert!(!url.contains(KEY));
    }

    /// With only a SAS token there is no presigned URL (it would carry the user's token), for
    /// either method; anonymous storages get plain URLs.
    #[test]
    fn sas_and_anonymous_urls() {
        let c = client(
            &[("container", "images"), ("azure_endpoint", "http://127.0.0.1:10000/acct")],
            &[("sas_token", "?sv=2021-08-06&sr=c&sp=rlcw&sig=abc%3D")],
        );
        for method in [Method::Get, Method::Put] {
            let Err(Error::Unsupported(m)) = c.presign(method, "a b", Duration::from_secs(5)) else { panic!() };
            assert_eq!(m, "presigned URLs need an account key; a SAS-token storage is served through stowage");
            assert!(!m.contains("abc"));
        }
        let c = client(&[("container", "images")], &[("account_name", "acct")]);
        assert_eq!(
            c.presign(Method::Get, "k", Duration::from_secs(5)).unwrap(),
            "https://acct.blob.core.windows.net/images/k"
        );
    }

    /// Without wasi:http (native) every request is refused; the message explains the grant when
    /// the endpoint came from a connection string, and never shows a secret.
    #[test]
    fn refusals_explain_the_grant() {
        let conn = format!("AccountName=acct;AccountKey={KEY};BlobEndpoint=http://10.0.0.1:10000/acct");
        let c = client(&[("container", "images")], &[("connection_string", &conn)]);
        let Err(Error::Denied(m)) = c.send("GET", c.blob_path("k"), &[], vec![], vec![]) else { panic!() };
        assert_eq!(
            m,
            "the stowage host refused the connection to 10.0.0.1:10000 (address policy): without azure_endpoint only \
             *.blob.core.windows.net may be reached; set azure_endpoint to the connection string's BlobEndpoint"
        );
        let c = client(
            &[("container", "images"), ("azure_endpoint", "http://10.0.0.1:10000/acct")],
            &[("connection_string", &conn)],
        );
        let Err(Error::Denied(m)) = c.send("GET", c.blob_path("k"), &[], vec![], vec![]) else { panic!() };
        assert_eq!(m, "the stowage host refused the connection to 10.0.0.1:10000 (address policy)");
        assert!(!m.contains(KEY));
    }
}
