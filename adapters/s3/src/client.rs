//! Requests to S3: addressing, the bucket's region and signing; the transport is `stowage_sdk::http`.

use std::cell::OnceCell;
use std::time::{Duration, SystemTime};

use stowage_sdk::Error;
use stowage_sdk::http::{Endpoint, Request, Response, encode_key, query_string};

use crate::config::{DEFAULT_REGION, S3Config};
use crate::error::S3Failure;
use crate::{sign, xml};

/// The host-cache key of the discovered region (the cache is per storage configuration).
const REGION_CACHE_KEY: &str = "region";
/// How long a discovered region is kept (an hour: a bucket keeps its region, but the same name
/// may be deleted and made again elsewhere, or the server reconfigured).
const REGION_CACHE_SECONDS: u32 = 3_600;

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
    pub fn of(config: &S3Config, region: &str) -> Addressing {
        let bucket = match &config.endpoint {
            Some(e) => Endpoint {
                https: e.https,
                authority: e.authority.clone(),
                base_path: format!("{}/{}", e.base_path, config.bucket),
            },
            None if config.bucket.contains('.') => Endpoint {
                https: true,
                authority: format!("s3.{region}.amazonaws.com"),
                base_path: format!("/{}", config.bucket),
            },
            None => Endpoint {
                https: true,
                authority: format!("{}.s3.{region}.amazonaws.com", config.bucket),
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

/// The region requests are signed for, and the addressing that goes with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub region: String,
    pub addressing: Addressing,
}

/// What a request is about: the bucket itself or one object (raw key).
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    Bucket,
    Object(&'a str),
}

/// A configured S3 client for one storage.
pub struct Client {
    pub config: S3Config,
    /// Set on first use: `region_name`, or the bucket's region found by [`Client::discover_region`]
    /// when `region_name` is empty. Kept for the life of the instance.
    bound: OnceCell<Bound>,
}

impl Client {
    pub fn new(config: S3Config) -> Client {
        let bound = OnceCell::new();
        if let Some(region) = &config.region {
            let _ = bound.set(Bound { region: region.clone(), addressing: Addressing::of(&config, region) });
        }
        Client { config, bound }
    }

    /// Region and addressing, discovering the bucket's region first when `region_name` is empty.
    /// A discovered region is kept in the host's cache for this storage for an hour, so new
    /// instances skip the discovery requests.
    ///
    /// # Errors
    /// A transport failure of the discovery request (not cached: the next call tries again).
    pub fn bound(&self) -> Result<&Bound, Error> {
        if let Some(bound) = self.bound.get() {
            return Ok(bound);
        }
        let cached = stowage_sdk::cache::get(REGION_CACHE_KEY).and_then(|v| String::from_utf8(v).ok());
        let region = match cached {
            Some(region) => region,
            None => match self.discover_region()? {
                Some(region) => {
                    stowage_sdk::cache::set(REGION_CACHE_KEY, region.as_bytes(), REGION_CACHE_SECONDS);
                    region
                }
                None => DEFAULT_REGION.to_string(),
            },
        };
        let addressing = Addressing::of(&self.config, &region);
        Ok(self.bound.get_or_init(|| Bound { region, addressing }))
    }

    /// The bucket's region, as boto3 finds it for a client without one: GetBucketLocation signed
    /// for `us-east-1` (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html>;
    /// an empty `LocationConstraint` is `us-east-1`, the legacy `EU` is `eu-west-1`); a refusal
    /// that names the region (the `x-amz-bucket-region` header of AWS, the `<Region>` of an
    /// `AuthorizationHeaderMalformed` document, which S3-compatible servers such as Garage and
    /// MinIO send); else a HeadBucket for its `x-amz-bucket-region` header (AWS sends it even
    /// with a 403, when GetBucketLocation is not allowed). `None` when nothing names a region:
    /// then `us-east-1` is used, uncached, and the real request reports what is wrong.
    pub fn discover_region(&self) -> Result<Option<String>, Error> {
        let probe =
            Bound { region: DEFAULT_REGION.to_string(), addressing: Addressing::of(&self.config, DEFAULT_REGION) };
        let response = self.send_with(&probe, "GET", Target::Bucket, &[("location", "")], vec![], vec![])?;
        if response.is_success() {
            if let Some(region) = xml::parse_location(&response.body) {
                return Ok(Some(region));
            }
        } else if let Some(region) = failure(&response).region {
            return Ok(Some(region));
        }
        let response = self.send_with(&probe, "HEAD", Target::Bucket, &[], vec![], vec![])?;
        Ok(failure(&response).region)
    }

    /// Signs (when credentials are set) and sends a request about `target`. Any HTTP status is
    /// a response; only a transport failure is an error.
    pub fn send(
        &self,
        method: &'static str,
        target: Target,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Response, Error> {
        self.send_with(self.bound()?, method, target, query, headers, body)
    }

    fn send_with(
        &self,
        bound: &Bound,
        method: &'static str,
        target: Target,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Response, Error> {
        let path = match target {
            Target::Bucket => bound.addressing.bucket_path(query),
            Target::Object(key) => bound.addressing.object_path(key, query),
        };
        let mut request: Request = bound.addressing.bucket.request(method, path, headers, body);
        request.set_content_length();
        if let Some(credentials) = &self.config.credentials {
            let url = request.url();
            let signed = sign::sign_headers(
                request.method,
                &url,
                &request.headers,
                &request.body,
                &bound.region,
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
        let bound = self.bound()?;
        let url = bound.addressing.url(&bound.addressing.object_path(key, query));
        match &self.config.credentials {
            None => Ok(url),
            Some(credentials) => {
                sign::presign_url(method, &url, &bound.region, credentials, SystemTime::now(), expires_in).map_err(
                    |e| Error::InvalidConfig(format!("cannot presign s3://{}/{key}: {}", self.config.bucket, e.0)),
                )
            }
        }
    }
}

/// A failed response, classified; the region comes from `x-amz-bucket-region` or the error document.
pub fn failure(response: &Response) -> S3Failure {
    let region = response.header("x-amz-bucket-region").map(str::to_string);
    S3Failure::new(response.status, &response.body, region, response.retry_after())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bucket: &str, endpoint: Option<&str>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: None,
            region: Some("eu-west-1".into()),
            endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
            credentials: None,
            sse_kms_key_id: None,
        }
    }

    #[test]
    fn aws_virtual_hosted() {
        let a = Addressing::of(&config("my-bucket", None), "eu-west-1");
        assert_eq!(a.url(&a.object_path("a b.txt", &[])), "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b.txt");
        assert_eq!(
            a.url(&a.bucket_path(&[("list-type", "2")])),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2"
        );
    }

    #[test]
    fn aws_dotted_bucket_is_path_style() {
        let a = Addressing::of(&config("my.bucket", None), "eu-west-1");
        assert_eq!(a.url(&a.object_path("k", &[])), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
        assert_eq!(a.url(&a.bucket_path(&[])), "https://s3.eu-west-1.amazonaws.com/my.bucket");
    }

    #[test]
    fn endpoint_path_style() {
        let a = Addressing::of(&config("stowage-test", Some("http://127.0.0.1:3900")), "eu-west-1");
        assert_eq!(a.url(&a.object_path("dir/x#1.json", &[])), "http://127.0.0.1:3900/stowage-test/dir/x%231.json");
        assert_eq!(a.url(&a.bucket_path(&[])), "http://127.0.0.1:3900/stowage-test");
        let a = Addressing::of(&config("b", Some("https://minio.example.com/s3/")), "eu-west-1");
        assert_eq!(a.url(&a.object_path("k", &[])), "https://minio.example.com/s3/b/k");
    }

    /// Anonymous storages get plain URLs.
    #[test]
    fn anonymous_presign_is_plain() {
        let c = Client::new(config("b", Some("http://127.0.0.1:3900")));
        assert_eq!(c.presign("GET", "a b", &[], Duration::from_secs(60)).unwrap(), "http://127.0.0.1:3900/b/a%20b");
    }
}
