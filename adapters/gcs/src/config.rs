//! Typed configuration of a `gcs` storage, parsed from the plain-text settings the host passes to
//! `open`. Field names are Label Studio's (`io_storages/gcs/models.py`), plus `gcs_endpoint`.

use std::fmt;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use serde_json::Value;
use stowage_sdk::http::Endpoint;
use stowage_sdk::object_store::prefix_setting;
use stowage_sdk::{Config, Error};

/// Where OAuth2 access tokens come from when a service-account key has no `token_uri`
/// (<https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>).
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Host of the Cloud Storage JSON API and of path-style signed URLs.
pub const GOOGLE_HOST: &str = "storage.googleapis.com";

/// The settings of one GCS storage.
pub struct GcsConfig {
    /// `bucket` (required): the bucket name, checked against Cloud Storage's naming rules
    /// ([`valid_bucket_name`]) so it cannot smuggle a path into a URL.
    pub bucket: String,
    /// `prefix`: folder of the storage, without a trailing `/`, used by `check` and `export_key`
    /// (the host passes it to `list` as well). Default: none.
    pub prefix: Option<String>,
    /// `google_project_id`: accepted and kept for Label Studio compatibility; object requests do not
    /// need it (the bucket names the project). Default: none.
    pub project_id: Option<String>,
    /// `gcs_endpoint`: a GCS-compatible server or emulator (`http://127.0.0.1:4443`, like
    /// `STORAGE_EMULATOR_HOST`). Default: none, i.e. `https://storage.googleapis.com`.
    pub endpoint: Option<Endpoint>,
    /// `google_application_credentials`: the service-account key (JSON text). Default: none, i.e.
    /// anonymous requests (public buckets, emulators) and unsigned object URLs.
    pub credentials: Option<ServiceAccount>,
}

/// A service-account key: who signs, with what, and where tokens come from. `Debug` shows the
/// e-mail only.
pub struct ServiceAccount {
    /// `client_email`: the account (JWT `iss`, V4 `X-Goog-Credential`).
    pub client_email: String,
    /// `private_key_id`: sent as the JWT `kid` when present.
    pub private_key_id: Option<String>,
    /// `private_key` (PEM, PKCS#8 or PKCS#1), ready to sign RS256 / GOOG4-RSA-SHA256.
    pub signer: SigningKey<Sha256>,
    /// `token_uri` (default [`DEFAULT_TOKEN_URI`]): the OAuth2 token endpoint, also the JWT `aud`.
    pub token_uri: Endpoint,
    /// `token_uri` exactly as given (the JWT `aud` claim must match it).
    pub token_uri_text: String,
}

impl fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("project_id", &self.project_id)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri_text)
            .finish()
    }
}

/// Cloud Storage's bucket naming rules (<https://cloud.google.com/storage/docs/buckets#naming>):
/// lowercase letters, digits, `-`, `_` and `.`; 3 to 63 characters, or up to 222 when the name
/// has dots, each dot-separated part at most 63; starting and ending with a letter or digit; no
/// `..` (which Google forbids, and which would climb out of `/storage/v1/b/{bucket}` in a URL).
/// Not checked (Google answers 400): names that look like IP addresses, or that begin with `goog`
/// or contain `google`.
pub fn valid_bucket_name(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    let letter_or_digit = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let max_len = if bucket.contains('.') { 222 } else { 63 };
    (3..=max_len).contains(&bytes.len())
        && bytes.iter().all(|b| letter_or_digit(b) || b"._-".contains(b))
        && bytes.first().is_some_and(letter_or_digit)
        && bytes.last().is_some_and(letter_or_digit)
        && !bucket.contains("..")
        && bucket.split('.').all(|part| part.len() <= 63)
}

/// `invalid-config` about the credentials. Messages name fields, never values.
fn bad_credentials(why: &str) -> Error {
    Error::InvalidConfig(format!("google_application_credentials: {why}"))
}

/// A short, code-like value (e.g. a `type`) that is safe to repeat in a message, or `None`.
fn code_like(value: &str) -> Option<&str> {
    (value.len() <= 40 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))).then_some(value)
}

impl ServiceAccount {
    /// Parses the text of a service-account key file
    /// (<https://cloud.google.com/iam/docs/keys-create-delete>): `type` `service_account`,
    /// `client_email`, `private_key`, optional `private_key_id` and `token_uri`.
    ///
    /// # Errors
    /// `invalid-config` with a message that names the problem and never repeats the key: invalid
    /// JSON gives Label Studio's `Google Application Credentials must be valid JSON string. ...`
    /// with the parser's position only.
    pub fn parse(json: &str) -> Result<ServiceAccount, Error> {
        // Parse to a `Value` first: serde_json's syntax errors give a position only, whereas typed
        // deserialization errors may quote a value (`invalid type: string "-----BEGIN ..."`).
        let value: Value = serde_json::from_str(json).map_err(|e| {
            let position = format!("line {} column {}", e.line(), e.column());
            let what = match e.classify() {
                serde_json::error::Category::Eof => "unexpected end of input",
                _ => "syntax error",
            };
            Error::InvalidConfig(format!(
                "Google Application Credentials must be valid JSON string. {what} at {position}"
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(bad_credentials("the service account key must be a JSON object"));
        };
        let field = |name: &str| -> Result<Option<&str>, Error> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(bad_credentials(&format!("\"{name}\" must be a string"))),
            }
        };
        match field("type")? {
            None | Some("service_account") => {}
            Some(other) => {
                let shown = code_like(other).map_or_else(String::new, |t| format!(" (got \"{t}\")"));
                return Err(bad_credentials(&format!(
                    "only service account keys (\"type\": \"service_account\") are supported{shown}"
                )));
            }
        }
        let client_email =
            field("client_email")?.ok_or_else(|| bad_credentials("\"client_email\" is missing"))?.trim().to_string();
        let pem = field("private_key")?.ok_or_else(|| bad_credentials("\"private_key\" is missing"))?;
        // Keys pasted through another JSON layer keep literal `\n`s; PEM needs real line breaks.
        let pem = pem.replace("\\n", "\n");
        let key = rsa::PrivateKey::from_pkcs8_pem(pem.trim())
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem.trim()))
            .map_err(|_| bad_credentials("\"private_key\" is not a PEM-encoded RSA private key"))?;
        let token_uri_text = field("token_uri")?.unwrap_or(DEFAULT_TOKEN_URI).trim().to_string();
        let token_uri = Endpoint::from_setting("google_application_credentials token_uri", &token_uri_text)?;
        let private_key_id = field("private_key_id")?.map(str::to_string);
        Ok(ServiceAccount { client_email, private_key_id, signer: SigningKey::new(key), token_uri, token_uri_text })
    }
}

impl GcsConfig {
    /// Parses and validates the settings. No I/O.
    ///
    /// # Errors
    /// `invalid-config` for a missing or malformed bucket, a malformed endpoint or credentials.
    pub fn from_config(config: &Config) -> Result<GcsConfig, Error> {
        let bucket = config.require("bucket")?.trim().to_string();
        if !valid_bucket_name(&bucket) {
            return Err(Error::InvalidConfig(format!(
                "Invalid bucket name \"{bucket}\": use 3 to 63 lowercase letters, digits, \"-\", \"_\" and \".\" (up to \
                 222 with dots, at most 63 between two dots), starting and ending with a letter or digit, without \"..\""
            )));
        }
        let prefix = prefix_setting(config);
        let project_id = config.text("google_project_id").map(str::to_string);
        let endpoint = config.text("gcs_endpoint").map(|e| Endpoint::from_setting("gcs_endpoint", e)).transpose()?;
        let credentials = config.text("google_application_credentials").map(ServiceAccount::parse).transpose()?;
        Ok(GcsConfig { bucket, prefix, project_id, endpoint, credentials })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Google's published test key (`googleapis/conformance-tests`, `storage/v1/service-account`;
    /// an inactive dummy account), as stored in `tests/data/`.
    pub const TEST_KEY_JSON: &str = include_str!("../tests/data/test_service_account.json");

    pub fn config(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Config {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config { settings: own(settings), secrets: own(secrets) }
    }

    /// The base64 body lines of the test key's PEM, to check that no message repeats any of it.
    fn key_lines() -> Vec<String> {
        let v: Value = serde_json::from_str(TEST_KEY_JSON).unwrap();
        v["private_key"].as_str().unwrap().lines().filter(|l| !l.starts_with("-----")).map(str::to_string).collect()
    }

    fn message(e: Error) -> String {
        match e {
            Error::InvalidConfig(m) => m,
            other => panic!("not invalid-config: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = GcsConfig::from_config(&config(&[("bucket", "bkt"), ("prefix", "a/b//"), ("gcs_endpoint", "")], &[]))
            .unwrap();
        assert_eq!(c.prefix.as_deref(), Some("a/b"));
        assert!(c.endpoint.is_none() && c.credentials.is_none() && c.project_id.is_none());
    }

    #[test]
    fn the_test_key_parses() {
        let c =
            GcsConfig::from_config(&config(&[("bucket", "bkt")], &[("google_application_credentials", TEST_KEY_JSON)]))
                .unwrap();
        let sa = c.credentials.unwrap();
        assert_eq!(sa.client_email, "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com");
        assert_eq!(sa.token_uri_text, DEFAULT_TOKEN_URI);
        assert_eq!(
            sa.token_uri,
            Endpoint { https: true, authority: "oauth2.googleapis.com".into(), base_path: "/token".into() }
        );
        let shown = format!("{sa:?}");
        assert!(!shown.contains("PRIVATE KEY") && shown.contains("<redacted>"), "{shown}");
    }

    /// Malformed credentials are `invalid-config` with a clear message that never repeats the key.
    #[test]
    fn malformed_credentials_never_echo_the_key() {
        let lines = key_lines();
        let truncated = &TEST_KEY_JSON[..TEST_KEY_JSON.find("BEGIN PRIVATE KEY").unwrap() + 200];
        let raw_newlines = TEST_KEY_JSON.replace("\\n", "\n");
        let not_a_key =
            TEST_KEY_JSON.replace("MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCsPzMirIottfQ2", "AAAA");
        let key_as_number = r#"{"type": "service_account", "client_email": "a@b", "private_key": 12}"#.to_string();
        let wrong_type = TEST_KEY_JSON.replace("\"service_account\"", "\"authorized_user\"");
        let no_email = TEST_KEY_JSON.replace("\"client_email\"", "\"email\"");
        let cases = [
            (
                truncated.to_string(),
                "Google Application Credentials must be valid JSON string. unexpected end of input at line",
            ),
            (raw_newlines, "Google Application Credentials must be valid JSON string. syntax error at line "),
            ("[1, 2]".to_string(), "google_application_credentials: the service account key must be a JSON object"),
            (not_a_key, "google_application_credentials: \"private_key\" is not a PEM-encoded RSA private key"),
            (key_as_number, "google_application_credentials: \"private_key\" must be a string"),
            (
                wrong_type,
                "google_application_credentials: only service account keys (\"type\": \"service_account\") are supported (got \"authorized_user\")",
            ),
            (no_email, "google_application_credentials: \"client_email\" is missing"),
        ];
        for (json, expected) in cases {
            let m = message(ServiceAccount::parse(&json).unwrap_err());
            assert!(m.starts_with(expected), "{m}");
            assert!(!m.contains("PRIVATE KEY") && !m.contains("-----"), "{m}");
            for line in &lines {
                for chunk in line.as_bytes().chunks(8).filter(|c| c.len() == 8) {
                    assert!(!m.contains(std::str::from_utf8(chunk).unwrap()), "{m} repeats the key");
                }
            }
        }
    }

    /// `gcs_endpoint` and `token_uri` are parsed by the SDK's [`Endpoint`]; messages name the
    /// setting and quote the value.
    #[test]
    fn endpoints() {
        let c = GcsConfig::from_config(&config(
            &[("bucket", "bkt"), ("gcs_endpoint", "https://Storage.Example.com:443/gcs/")],
            &[],
        ))
        .unwrap();
        assert_eq!(
            c.endpoint,
            Some(Endpoint { https: true, authority: "storage.example.com".into(), base_path: "/gcs".into() })
        );
        let Err(Error::InvalidConfig(m)) =
            GcsConfig::from_config(&config(&[("bucket", "bkt"), ("gcs_endpoint", "ftp://x")], &[]))
        else {
            panic!()
        };
        assert_eq!(m, "gcs_endpoint \"ftp://x\" is not a valid URL: it must start with http:// or https://");
        let bad_uri = TEST_KEY_JSON.replace("https://oauth2.googleapis.com/token", "oauth2.googleapis.com/token");
        let m = message(ServiceAccount::parse(&bad_uri).unwrap_err());
        assert_eq!(
            m,
            "google_application_credentials token_uri \"oauth2.googleapis.com/token\" is not a valid URL: it must start with http:// or https://"
        );
    }

    /// Google's naming rules: no `..` (a path climbing out of `/storage/v1/b/{bucket}`), no
    /// uppercase, 3 to 63 characters (222 with dots, 63 between dots), a letter or digit at each end.
    #[test]
    fn bucket_names() {
        let dotted = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(30)].join(".");
        assert_eq!(dotted.len(), 222);
        for good in ["my.bucket-1_x", "abc", "0ab", "a-b", "a_b", "stowage-test", &"x".repeat(63), dotted.as_str()] {
            assert!(valid_bucket_name(good), "{good}");
        }
        let too_long_dotted = format!("{dotted}e");
        let long_part = format!("{}.b", "a".repeat(64));
        for bad in [
            "",
            "b",
            "ab",
            "..",
            "...",
            "a..b",
            "a.b..c",
            ".ab",
            "ab.",
            "-ab",
            "ab-",
            "_ab",
            "ab_",
            "Bucket",
            "a/b",
            "a b",
            "evil.com:80",
            "b?x",
            "b#x",
            "a%2Fb",
            &"x".repeat(64),
            &too_long_dotted,
            &long_part,
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
        let Err(Error::InvalidConfig(m)) = GcsConfig::from_config(&config(&[("bucket", "..")], &[])) else { panic!() };
        assert_eq!(
            m,
            "Invalid bucket name \"..\": use 3 to 63 lowercase letters, digits, \"-\", \"_\" and \".\" (up to 222 with \
             dots, at most 63 between two dots), starting and ending with a letter or digit, without \"..\""
        );
        assert!(matches!(GcsConfig::from_config(&config(&[("bucket", "a/b")], &[])), Err(Error::InvalidConfig(_))));
        assert!(matches!(GcsConfig::from_config(&config(&[], &[])), Err(Error::InvalidConfig(_))));
    }
}
