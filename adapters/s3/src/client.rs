//! Requests to S3: addressing and signing; the transport is `stowage_sdk::http`.

use std::time::{Duration, SystemTime};

use stowage_sdk::Error;
use stowage_sdk::http::{Endpoint, Request, Response, encode_key, query_string};

use crate::config::S3Config;
use crate::sign;

/// Where requests for one bucket go.
#[derive(Clone, Debug, PartialEq)]
pub struct Addressing {
    /// The bucket as an endpoint: scheme and `host[:port]` of the server, and as base path what
    /// is prepended to `/{key}`: empty (virtual-hosted) or `{s3_endpoint's base path}/{bucket}`
    /// (path-style).
    pub bucket: Endpoint,
}

impl Addressing {
    /// With `s3_endpoint`: path-style `{endpoint}/{bucket}/{key}`. Without: AWS virtual-hosted
    /// `https://{bucket}.s3.{region}.amazonaws.com/{key}`, or path-style on
    /// `s3.{region}.amazonaws.com` for a bucket name with dots (a dotted name breaks the
    /// `*.s3.{region}.amazonaws.com` certificate, as botocore also knows).
    pub fn of(config: &S3Config) -> Addressing {
        let bucket = match &config.endpoint {
            Some(e) => Endpoint {
                https: e.https,
                authority: e.authority.clone(),
                base_path: format!("{}/{}", e.base_path, config.bucket),
            },
            None if config.bucket.contains('.') => Endpoint {
                https: true,
                authority: format!("s3.{}.amazonaws.com", config.region),
                base_path: format!("/{}", config.bucket),
            },
            None => Endpoint {
                https: true,
                authority: format!("{}.s3.{}.amazonaws.com", config.bucket, config.region),
                base_path: String::new(),
            },
        };
        Addressing { bucket }
    }

    /// Path and query of an object (`key` raw, encoded here).
    pub fn object_path(&self, key: &str, query: &[(&str, &str)]) -> String {
        format!("{}/{}{}", self.bucket.base_path, encode_key(key), query_string(query))
    }

    /// Path and query of the bucket itself (`/` or `/{bucket}`).
    pub fn bucket_path(&self, query: &[(&str, &str)]) -> String {
        let path = if self.bucket.base_path.is_empty() { "/" } else { self.bucket.base_path.as_str() };
        format!("{path}{}", query_string(query))
    }

    /// Absolute URL of a path from [`Self::object_path`] or [`Self::bucket_path`].
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.bucket.origin())
    }
}

/// A configured S3 client for one storage.
pub struct Client {
    pub config: S3Config,
    pub addressing: Addressing,
}

impl Client {
    pub fn new(config: S3Config) -> Client {
        let addressing = Addressing::of(&config);
        Client { config, addressing }
    }

    /// Signs (when credentials are set) and sends `request`. Any HTTP status is a response;
    /// only a transport failure is an error.
    pub fn send(&self, mut request: Request) -> Result<Response, Error> {
        request.set_content_length();
        if let Some(credentials) = &self.config.credentials {
            let url = request.url();
            let signed = sign::sign_headers(
                request.method,
                &url,
                &request.headers,
                &request.body,
                &self.config.region,
                credentials,
                SystemTime::now(),
            )
            .map_err(|e| Error::InvalidConfig(format!("cannot sign the request: {}", e.0)))?;
            request.headers.extend(signed);
        }
        stowage_sdk::http::send(&request)
    }

    /// A presigned URL for `method` on `key`, valid `expires_in`; plain (unsigned) without
    /// credentials, for public buckets.
    pub fn presign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        expires_in: Duration,
    ) -> Result<String, Error> {
        let url = self.addressing.url(&self.addressing.object_path(key, query));
        match &self.config.credentials {
            None => Ok(url),
            Some(credentials) => {
                sign::presign_url(method, &url, &self.config.region, credentials, SystemTime::now(), expires_in)
                    .map_err(|e| {
                        Error::InvalidConfig(format!("cannot presign s3://{}/{key}: {}", self.config.bucket, e.0))
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bucket: &str, endpoint: Option<&str>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: None,
            region: "eu-west-1".into(),
            endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
            credentials: None,
            sse_kms_key_id: None,
        }
    }

    #[test]
    fn aws_virtual_hosted() {
        let a = Addressing::of(&config("my-bucket", None));
        assert_eq!(a.url(&a.object_path("a b.txt", &[])), "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b.txt");
        assert_eq!(
            a.url(&a.bucket_path(&[("list-type", "2")])),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2"
        );
    }

    #[test]
    fn aws_dotted_bucket_is_path_style() {
        let a = Addressing::of(&config("my.bucket", None));
        assert_eq!(a.url(&a.object_path("k", &[])), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
        assert_eq!(a.url(&a.bucket_path(&[])), "https://s3.eu-west-1.amazonaws.com/my.bucket");
    }

    #[test]
    fn endpoint_path_style() {
        let a = Addressing::of(&config("stowage-test", Some("http://127.0.0.1:3900")));
        assert_eq!(a.url(&a.object_path("dir/x#1.json", &[])), "http://127.0.0.1:3900/stowage-test/dir/x%231.json");
        assert_eq!(a.url(&a.bucket_path(&[])), "http://127.0.0.1:3900/stowage-test");
        let a = Addressing::of(&config("b", Some("https://minio.example.com/s3/")));
        assert_eq!(a.url(&a.object_path("k", &[])), "https://minio.example.com/s3/b/k");
    }

    /// Anonymous storages get plain URLs.
    #[test]
    fn anonymous_presign_is_plain() {
        let c = Client::new(config("b", Some("http://127.0.0.1:3900")));
        assert_eq!(c.presign("GET", "a b", &[], Duration::from_secs(60)).unwrap(), "http://127.0.0.1:3900/b/a%20b");
    }
}
