//! Typed configuration of an `s3` storage, parsed from the plain-text settings the host passes to
//! `open`. Field names are Label Studio's (`io_storages/s3/models.py`).

use std::fmt;

use stowage_sdk::http::Endpoint;
use stowage_sdk::object_store::prefix_setting;
use stowage_sdk::{Config, Error};

/// Region of requests that discover a bucket's region (`region_name` empty), and the region of
/// a bucket when nothing says otherwise, as for boto3.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The settings of one S3 storage.
#[derive(Clone, PartialEq)]
pub struct S3Config {
    /// `bucket` (required): the bucket name. Checked against botocore's rule
    /// (`^[a-zA-Z0-9.\-_]{1,255}$`) so it cannot smuggle a path or a host into a URL.
    pub bucket: String,
    /// `prefix`: folder of the storage, without a trailing `/`, used by `check` and `export_key`
    /// (the host passes it to `list` as well). Default: none.
    pub prefix: Option<String>,
    /// `region_name`: signing region. Default: none, i.e. the bucket's own region, discovered on
    /// first use ([`crate::client::Client::discover_region`]).
    pub region: Option<String>,
    /// `s3_endpoint`: an S3-compatible server (`http://127.0.0.1:3900`, `http(s)://host[:port][/base]`),
    /// addressed path-style.
    /// Default: none, i.e. AWS virtual-hosted addressing `https://{bucket}.s3.{region}.amazonaws.com`.
    pub endpoint: Option<Endpoint>,
    /// `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`): SigV4 credentials.
    /// Default: none, i.e. anonymous unsigned requests (public buckets). The host fills them from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` only when the operator
    /// allows ambient credentials.
    pub credentials: Option<Credentials>,
    /// `aws_sse_kms_key_id`: when set, `put` asks for SSE-KMS with this key. Default: none
    /// (the bucket's default encryption applies).
    pub sse_kms_key_id: Option<String>,
}

/// Static credentials. `Debug` shows the key id only.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("sse_kms_key_id", &self.sse_kms_key_id)
            .finish()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// botocore's `VALID_BUCKET` rule (`^[a-zA-Z0-9.\-_]{1,255}$`), which Label Studio applies on create.
pub fn valid_bucket_name(bucket: &str) -> bool {
    (1..=255).contains(&bucket.len()) && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A region name as AWS spells them (`eu-west-1`), or an S3-compatible server's own (`garage`):
/// letters, digits and `-`, at most 32. Also applied to regions servers name in answers.
pub fn valid_region(region: &str) -> bool {
    (1..=32).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl S3Config {
    /// Parses and validates the settings. No I/O.
    ///
    /// # Errors
    /// `invalid-config` for a missing or malformed bucket, a malformed endpoint, or half-given credentials.
    pub fn from_config(config: &Config) -> Result<S3Config, Error> {
        let bucket = config.require("bucket")?.trim().to_string();
        if !valid_bucket_name(&bucket) {
            return Err(Error::InvalidConfig(format!(
                "Invalid bucket name \"{bucket}\": Bucket name must match the regex \"^[a-zA-Z0-9.\\-_]{{1,255}}$\""
            )));
        }
        let prefix = prefix_setting(config);
        let region = config.text("region_name").map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
        if let Some(region) = region.as_deref().filter(|r| !valid_region(r)) {
            return Err(Error::InvalidConfig(format!("region_name {region:?} is not a valid region name")));
        }
        let endpoint = config.text("s3_endpoint").map(|raw| Endpoint::from_setting("s3_endpoint", raw)).transpose()?;
        let key_id = config.text("aws_access_key_id");
        let secret = config.text("aws_secret_access_key");
        let token = config.text("aws_session_token");
        let credentials = match (key_id, secret) {
            (Some(id), Some(secret)) => Some(Credentials {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: token.map(str::to_string),
            }),
            (None, None) if token.is_none() => None,
            _ => {
                return Err(Error::InvalidConfig(
                    "aws_access_key_id and aws_secret_access_key must be set together (aws_session_token needs both)"
                        .into(),
                ));
            }
        };
        let sse_kms_key_id = config.text("aws_sse_kms_key_id").map(str::to_string);
        Ok(S3Config { bucket, prefix, region, endpoint, credentials, sse_kms_key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)], secrets: &[(&str, &str)]) -> Config {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config { settings: own(pairs), secrets: own(secrets) }
    }

    /// Defaults: region discovered, AWS addressing, anonymous.
    #[test]
    fn defaults() {
        let c = S3Config::from_config(&config(&[("bucket", "b")], &[])).unwrap();
        assert_eq!(c.region, None);
        assert_eq!(c.endpoint, None);
        assert_eq!(c.credentials, None);
        assert_eq!(c.prefix, None);
    }

    /// Empty strings count as unset; the prefix loses its trailing slashes.
    #[test]
    fn empty_values_are_unset() {
        let c = S3Config::from_config(&config(
            &[("bucket", "b"), ("prefix", "a/b//"), ("region_name", ""), ("s3_endpoint", "")],
            &[("aws_access_key_id", ""), ("aws_secret_access_key", "")],
        ))
        .unwrap();
        assert_eq!(c.prefix.as_deref(), Some("a/b"));
        assert_eq!(c.region, None);
        assert_eq!(c.endpoint, None);
        assert_eq!(c.credentials, None);
    }

    /// `s3_endpoint` is parsed by the SDK's [`Endpoint`]; its value is quoted in the message.
    #[test]
    fn endpoint_setting() {
        let c = S3Config::from_config(&config(
            &[("bucket", "b"), ("s3_endpoint", " https://S3.Example.com:443/base/ ")],
            &[],
        ))
        .unwrap();
        assert_eq!(
            c.endpoint,
            Some(Endpoint { https: true, authority: "s3.example.com".into(), base_path: "/base".into() })
        );
        let Err(Error::InvalidConfig(m)) =
            S3Config::from_config(&config(&[("bucket", "b"), ("s3_endpoint", "http://u:p@host")], &[]))
        else {
            panic!()
        };
        assert_eq!(
            m,
            "s3_endpoint \"http://u:p@host\" is not a valid URL: only scheme, host, port and path are allowed"
        );
    }

    /// A bucket name with a slash or a host part is refused before any URL is built.
    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("my.bucket-1_x"));
        for bad in ["", "a/b", "a b", "evil.com:80", "b?x"] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        assert!(matches!(S3Config::from_config(&config(&[("bucket", "a/b")], &[])), Err(Error::InvalidConfig(_))));
        assert!(matches!(S3Config::from_config(&config(&[], &[])), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn half_credentials_are_refused() {
        let only_id = config(&[("bucket", "b")], &[("aws_access_key_id", "AKIA")]);
        assert!(matches!(S3Config::from_config(&only_id), Err(Error::InvalidConfig(_))));
        let only_token = config(&[("bucket", "b")], &[("aws_session_token", "tok")]);
        assert!(matches!(S3Config::from_config(&only_token), Err(Error::InvalidConfig(_))));
    }

    /// `Debug` never shows the secret key or the session token.
    #[test]
    fn debug_hides_secrets() {
        let c = S3Config::from_config(&config(
            &[("bucket", "b")],
            &[
                ("aws_access_key_id", "AKIDEXAMPLE"),
                ("aws_secret_access_key", "SECRETSECRET"),
                ("aws_session_token", "TOKENTOKEN"),
            ],
        ))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("SECRETSECRET") && !shown.contains("TOKENTOKEN"), "{shown}");
    }
}
