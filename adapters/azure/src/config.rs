//! Typed configuration of an `azure` storage, parsed from the plain-text settings the host passes to
//! `open`. Field names are Label Studio's (`io_storages/azure_blob/models.py`: `container`, `prefix`,
//! `account_name`, `account_key`); `sas_token`, `connection_string` and `azure_endpoint` are
//! stowage's, for users who cannot hand over an account key and for Azurite or other clouds.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stowage_sdk::http::Endpoint;
use stowage_sdk::object_store::prefix_setting;
use stowage_sdk::{Config, Error};

/// Endpoint suffix of the public Azure cloud (`https://{account}.blob.core.windows.net`).
pub const DEFAULT_ENDPOINT_SUFFIX: &str = "core.windows.net";

/// The settings of one Azure Blob storage.
#[derive(Clone, PartialEq)]
pub struct AzureConfig {
    /// `container` (required): the container name, checked against Azure's naming rule so it
    /// cannot smuggle a path into a URL.
    pub container: String,
    /// `prefix`: folder of the storage, without a trailing `/`, used by `check` and `export_key`
    /// (the host passes it to `list` as well). Default: none.
    pub prefix: Option<String>,
    /// Where requests go (see [`EndpointSource`] for the precedence); the base path is Azurite's
    /// path-style `/{account}`, empty on Azure.
    pub endpoint: Endpoint,
    /// Which setting the endpoint came from.
    pub endpoint_source: EndpointSource,
    /// How requests are authorised.
    pub auth: Auth,
}

/// How requests are authorised.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// `account_name` + `account_key` (or a connection string's `AccountName` + `AccountKey`):
    /// every request is signed with SharedKey, presigned URLs are service SAS made with the key.
    SharedKey { account: String, key: Vec<u8> },
    /// `sas_token` (or a connection string's `SharedAccessSignature`) only: the token, without its
    /// leading `?`, is appended to every request. There are no presigned URLs then (they would
    /// carry the token): `presign` is `unsupported` and the host serves the objects itself.
    Sas(String),
    /// No credentials: unsigned requests, for public containers.
    Anonymous,
}

/// Where the endpoint came from, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// The `azure_endpoint` setting: the host grants exactly its host and port.
    Setting,
    /// A connection string's `BlobEndpoint`: the host reaches it only if it is also granted, i.e.
    /// under `*.blob.core.windows.net` or given as `azure_endpoint` too.
    ConnectionString,
    /// `{DefaultEndpointsProtocol}://{account}.blob.{EndpointSuffix}` (default
    /// `https://{account}.blob.core.windows.net`).
    Account,
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("endpoint_source", &self.endpoint_source)
            .field("auth", &self.auth)
            .finish()
    }
}

/// `Debug` shows the kind of credentials only (the account name is write-only in Label Studio too).
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::SharedKey { .. } => "SharedKey(<redacted>)",
            Auth::Sas(_) => "Sas(<redacted>)",
            Auth::Anonymous => "Anonymous",
        })
    }
}

/// Azure's container naming rule: 3 to 63 characters, lowercase letters, digits and `-`, starting
/// and ending with a letter or digit, no `--`; or one of the special containers `$root`, `$web`,
/// `$logs` (<https://learn.microsoft.com/en-us/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata>).
pub fn valid_container_name(name: &str) -> bool {
    if matches!(name, "$root" | "$web" | "$logs") {
        return true;
    }
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--")
}

/// An account name can only be lowercase letters and digits (3 to 24 of them on Azure; Azurite
/// accepts any length): checked because it becomes part of a host name.
pub fn valid_account_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Parses an endpoint setting `http(s)://host[:port][/base]` (the SDK's [`Endpoint::parse`]), also
/// refusing `%`: the base path goes into SharedKey's canonicalized resource as written. `field`
/// names the setting in messages; the value is echoed only when `echo` (`azure_endpoint`, which is
/// not secret; a connection string's `BlobEndpoint` is).
pub fn parse_endpoint(raw: &str, field: &str, echo: bool) -> Result<Endpoint, Error> {
    Endpoint::parse_refusing(raw, &['%']).map_err(|e| e.into_error(field, echo.then_some(raw)))
}

/// `https://{account}.blob.{suffix}` (or `http://` when `https` is false).
pub fn account_endpoint(account: &str, https: bool, suffix: &str) -> Endpoint {
    Endpoint { https, authority: format!("{account}.blob.{suffix}"), base_path: String::new() }
}

/// The parts of an Azure Storage connection string stowage uses
/// (<https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string>).
#[derive(Clone, PartialEq)]
pub struct ConnectionString {
    /// `DefaultEndpointsProtocol`: `https` (default) or `http`.
    pub https: bool,
    /// `AccountName`: used when the `account_name` setting is empty.
    pub account_name: Option<String>,
    /// `AccountKey` (base64, decoded later): used when the `account_key` setting is empty; with an
    /// account name it makes SharedKey credentials, which win over any SAS token.
    pub account_key: Option<String>,
    /// `BlobEndpoint`, as written (parsed later): the endpoint when `azure_endpoint` is empty.
    pub blob_endpoint: Option<String>,
    /// `SharedAccessSignature`, as written (checked later): used when there is no account key and
    /// the `sas_token` setting is empty.
    pub sas: Option<String>,
    /// `EndpointSuffix`, default [`DEFAULT_ENDPOINT_SUFFIX`].
    pub endpoint_suffix: Option<String>,
}

/// An empty connection string: https, nothing else.
impl Default for ConnectionString {
    fn default() -> ConnectionString {
        ConnectionString {
            https: true,
            account_name: None,
            account_key: None,
            blob_endpoint: None,
            sas: None,
            endpoint_suffix: None,
        }
    }
}

impl ConnectionString {
    /// Parses `Key=Value;Key=Value;...` (keys case-insensitive, empty segments ignored, values may
    /// contain `=`). Messages name the offending key at most, never a value.
    pub fn parse(raw: &str) -> Result<ConnectionString, Error> {
        let bad = |why: String| Error::InvalidConfig(format!("connection_string is not valid: {why}"));
        let mut parsed = ConnectionString::default();
        for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(bad("expected Key=Value pairs separated by ';'".into()));
            };
            let value = value.trim();
            let value = (!value.is_empty()).then(|| value.to_string());
            match key.trim().to_ascii_lowercase().as_str() {
                "defaultendpointsprotocol" => match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("https") | None => parsed.https = true,
                    Some("http") => parsed.https = false,
                    Some(_) => return Err(bad("DefaultEndpointsProtocol must be http or https".into())),
                },
                "accountname" => parsed.account_name = value,
                "accountkey" => parsed.account_key = value,
                "blobendpoint" => parsed.blob_endpoint = value,
                "sharedaccesssignature" => parsed.sas = value,
                "endpointsuffix" => parsed.endpoint_suffix = value,
                "usedevelopmentstorage" => {
                    return Err(bad(
                        "UseDevelopmentStorage is not supported: give the emulator's BlobEndpoint, AccountName and \
                         AccountKey (and the same endpoint as azure_endpoint)"
                            .into(),
                    ));
                }
                // QueueEndpoint, TableEndpoint, FileEndpoint, ... are for other services.
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// A SAS token as users paste it: the leading `?` dropped; it must carry a signature and be a
/// plain query string.
fn sas_token(raw: &str, field: &str) -> Result<String, Error> {
    let token = raw.trim().trim_start_matches('?').to_string();
    let plain = token.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    if !plain || !token.split('&').any(|p| p.starts_with("sig=") && p.len() > 4) {
        return Err(Error::InvalidConfig(format!(
            "{field} is not a SAS token: expected a query string such as sv=...&sp=...&sig=..."
        )));
    }
    Ok(token)
}

impl AzureConfig {
    /// Parses and validates the settings. No I/O.
    ///
    /// Credentials, first match wins (as `docs.md` says): an account name and an account key
    /// (SharedKey), each from its setting (`account_name`, `account_key`) or else from the
    /// connection string (`AccountName`, `AccountKey`); then a SAS token, from `sas_token` or else
    /// the connection string's `SharedAccessSignature`. So a connection string's `AccountKey` wins
    /// over a `sas_token` setting, and a setting always wins over the same part of
    /// `connection_string`. Without any: anonymous.
    ///
    /// # Errors
    /// `invalid-config` for a missing or malformed container, a malformed endpoint, connection
    /// string, account key or SAS token, or an account key without an account name.
    pub fn from_config(config: &Config) -> Result<AzureConfig, Error> {
        let container = config.require("container")?.trim().to_string();
        if !valid_container_name(&container) {
            return Err(Error::InvalidConfig(format!(
                "Invalid container name \"{container}\": use 3 to 63 lowercase letters, digits and single hyphens, \
                 starting and ending with a letter or digit"
            )));
        }
        let prefix = prefix_setting(config);
        let connection = config.text("connection_string").map(ConnectionString::parse).transpose()?.unwrap_or_default();
        let account = config.text("account_name").map(str::to_string).or(connection.account_name.clone());
        if let Some(account) = &account
            && !valid_account_name(account)
        {
            return Err(Error::InvalidConfig("account_name must be letters and digits only".into()));
        }
        let key = config.text("account_key").map(str::to_string).or(connection.account_key.clone());
        let sas = match config.text("sas_token") {
            Some(raw) => Some(sas_token(raw, "sas_token")?),
            None => connection
                .sas
                .as_deref()
                .map(|raw| sas_token(raw, "the connection string's SharedAccessSignature"))
                .transpose()?,
        };
        let auth = match (&account, key, sas) {
            (Some(account), Some(key), _) => {
                let key =
                    BASE64.decode(key.as_bytes()).ok().filter(|k| !k.is_empty()).ok_or_else(|| {
                        Error::InvalidConfig("account_key is not a base64 storage account key".into())
                    })?;
                Auth::SharedKey { account: account.clone(), key }
            }
            (None, Some(_), _) => {
                return Err(Error::InvalidConfig("account_name must be set together with account_key".into()));
            }
            (_, None, Some(sas)) => Auth::Sas(sas),
            (_, None, None) => Auth::Anonymous,
        };
        let (endpoint, endpoint_source) = if let Some(raw) = config.text("azure_endpoint") {
            (parse_endpoint(raw, "azure_endpoint", true)?, EndpointSource::Setting)
        } else if let Some(raw) = &connection.blob_endpoint {
            (parse_endpoint(raw, "the connection string's BlobEndpoint", false)?, EndpointSource::ConnectionString)
        } else if let Some(account) = &account {
            let suffix = connection.endpoint_suffix.as_deref().unwrap_or(DEFAULT_ENDPOINT_SUFFIX);
            if !suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
                return Err(Error::InvalidConfig("the connection string's EndpointSuffix is not a domain name".into()));
            }
            (account_endpoint(account, connection.https, suffix), EndpointSource::Account)
        } else {
            return Err(Error::InvalidConfig(
                "account_name must be set (or azure_endpoint, or a connection_string with AccountName or BlobEndpoint)"
                    .into(),
            ));
        };
        Ok(AzureConfig { container, prefix, endpoint, endpoint_source, auth })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)], secrets: &[(&str, &str)]) -> Config {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config { settings: own(pairs), secrets: own(secrets) }
    }

    const KEY: &str = "c2VjcmV0LWtleS0wMTIzNDU2Nzg5"; // base64("secret-key-0123456789")

    /// account_name + account_key: SharedKey on `https://{account}.blob.core.windows.net`.
    #[test]
    fn account_key_defaults() {
        let c = AzureConfig::from_config(&config(
            &[("container", "images"), ("prefix", "a/b//")],
            &[("account_name", "myacct"), ("account_key", KEY)],
        ))
        .unwrap();
        assert_eq!(c.endpoint.url(), "https://myacct.blob.core.windows.net");
        assert_eq!(c.endpoint_source, EndpointSource::Account);
        assert_eq!(c.prefix.as_deref(), Some("a/b"));
        assert_eq!(c.auth, Auth::SharedKey { account: "myacct".into(), key: b"secret-key-0123456789".to_vec() });
    }

    /// azure_endpoint (Azurite, path-style) wins; empty strings count as unset.
    #[test]
    fn endpoint_setting_and_empty_values() {
        let c = AzureConfig::from_config(&config(
            &[("container", "c01"), ("prefix", ""), ("azure_endpoint", "http://127.0.0.1:10000/stowageacct/")],
            &[("account_name", "stowageacct"), ("account_key", KEY), ("sas_token", ""), ("connection_string", "")],
        ))
        .unwrap();
        assert_eq!(
            c.endpoint,
            Endpoint { https: false, authority: "127.0.0.1:10000".into(), base_path: "/stowageacct".into() }
        );
        assert_eq!(c.endpoint_source, EndpointSource::Setting);
        assert_eq!(c.prefix, None);
    }

    /// A SAS token alone (leading `?` dropped) needs no key; an endpoint or account name still.
    #[test]
    fn sas_only() {
        let c = AzureConfig::from_config(&config(
            &[("container", "c01"), ("azure_endpoint", "http://127.0.0.1:10000/acct")],
            &[("sas_token", "?sv=2021-08-06&sr=c&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=abc%3D")],
        ))
        .unwrap();
        assert_eq!(c.auth, Auth::Sas("sv=2021-08-06&sr=c&sp=rl&se=2030-01-01T00%3A00%3A00Z&sig=abc%3D".into()));
        for bad in ["sv=2021-08-06&sp=r", "sig=", "sv=1&sig=a b", "sig=a#b"] {
            let e = AzureConfig::from_config(&config(
                &[("container", "c01")],
                &[("account_name", "a"), ("sas_token", bad)],
            ));
            let Err(Error::InvalidConfig(m)) = e else { panic!("{bad}") };
            assert_eq!(m, "sas_token is not a SAS token: expected a query string such as sv=...&sp=...&sig=...");
        }
        let e = AzureConfig::from_config(&config(&[("container", "c01")], &[("sas_token", "sig=x")]));
        assert!(matches!(e, Err(Error::InvalidConfig(m)) if m.starts_with("account_name must be set")));
    }

    /// A connection string gives account, key, endpoint and SAS; settings win over its parts.
    #[test]
    fn connection_strings() {
        let raw = format!(
            "DefaultEndpointsProtocol=http;AccountName=stowageacct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/stowageacct;QueueEndpoint=http://127.0.0.1:10001/stowageacct;"
        );
        let c = AzureConfig::from_config(&config(&[("container", "c01")], &[("connection_string", &raw)])).unwrap();
        assert_eq!(c.endpoint.url(), "http://127.0.0.1:10000/stowageacct");
        assert_eq!(c.endpoint_source, EndpointSource::ConnectionString);
        assert!(matches!(&c.auth, Auth::SharedKey { account, .. } if account == "stowageacct"));

        let sas = "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2021-08-06&sig=x%3D";
        let c = AzureConfig::from_config(&config(&[("container", "c01")], &[("connection_string", sas)])).unwrap();
        assert_eq!(c.auth, Auth::Sas("sv=2021-08-06&sig=x%3D".into()));
        assert_eq!(c.endpoint.url(), "https://acct.blob.core.windows.net");

        let suffix = format!("AccountName=acct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn");
        let c = AzureConfig::from_config(&config(&[("container", "c01")], &[("connection_string", &suffix)])).unwrap();
        assert_eq!(c.endpoint.url(), "https://acct.blob.core.chinacloudapi.cn");

        let c = AzureConfig::from_config(&config(
            &[("container", "c01"), ("azure_endpoint", "http://127.0.0.1:9/x")],
            &[("connection_string", &raw), ("account_name", "other")],
        ))
        .unwrap();
        assert_eq!((c.endpoint.url(), c.endpoint_source), ("http://127.0.0.1:9/x".into(), EndpointSource::Setting));
        assert!(matches!(&c.auth, Auth::SharedKey { account, .. } if account == "other"));

        for bad in ["garbage", "UseDevelopmentStorage=true", "DefaultEndpointsProtocol=ftp;AccountName=a"] {
            let e = AzureConfig::from_config(&config(&[("container", "c01")], &[("connection_string", bad)]));
            assert!(matches!(e, Err(Error::InvalidConfig(_))), "{bad}");
        }
    }

    /// The documented precedence: an account key (setting or connection string) beats any SAS
    /// token (setting or connection string); a `sas_token` setting beats the connection string's.
    #[test]
    fn credential_precedence() {
        let open = |secrets: &[(&str, &str)]| AzureConfig::from_config(&config(&[("container", "c01")], secrets));
        let with_key = format!("AccountName=acct;AccountKey={KEY};SharedAccessSignature=sv=1&sig=conn");
        let c = open(&[("connection_string", &with_key), ("sas_token", "sv=1&sig=setting")]).unwrap();
        assert!(matches!(&c.auth, Auth::SharedKey { account, .. } if account == "acct"));
        let c = open(&[("account_name", "acct"), ("account_key", KEY), ("sas_token", "sig=setting")]).unwrap();
        assert!(matches!(&c.auth, Auth::SharedKey { .. }));
        let sas_only = "AccountName=acct;SharedAccessSignature=sv=1&sig=conn";
        let c = open(&[("connection_string", sas_only), ("sas_token", "sv=1&sig=setting")]).unwrap();
        assert_eq!(c.auth, Auth::Sas("sv=1&sig=setting".into()));
        let c = open(&[("connection_string", sas_only)]).unwrap();
        assert_eq!(c.auth, Auth::Sas("sv=1&sig=conn".into()));
    }

    #[test]
    fn names_and_keys() {
        assert!(valid_container_name("stowage-test") && valid_container_name("$root") && valid_container_name("abc"));
        for bad in ["", "ab", "Upper", "a--b", "-ab", "ab-", "a/b", "a b", "x".repeat(64).as_str()] {
            assert!(!valid_container_name(bad), "{bad}");
        }
        let open = |c: &str, account: &str, key: &str| {
            AzureConfig::from_config(&config(&[("container", c)], &[("account_name", account), ("account_key", key)]))
        };
        assert!(matches!(open("a/b", "acct", KEY), Err(Error::InvalidConfig(_))));
        assert!(matches!(open("c01", "evil.com:80/", KEY), Err(Error::InvalidConfig(_))));
        let Err(Error::InvalidConfig(m)) = open("c01", "acct", "not base64!") else { panic!() };
        assert_eq!(m, "account_key is not a base64 storage account key");
        let e = AzureConfig::from_config(&config(&[("container", "c01")], &[("account_key", KEY)]));
        assert!(matches!(e, Err(Error::InvalidConfig(m)) if m == "account_name must be set together with account_key"));
        assert!(matches!(AzureConfig::from_config(&config(&[], &[])), Err(Error::InvalidConfig(_))));
    }

    /// The SDK's endpoint parsing, plus `%` refused; the value is echoed for `azure_endpoint` only.
    #[test]
    fn endpoint_parsing() {
        let e = parse_endpoint("https://Acct.Blob.Core.Windows.Net:443/", "azure_endpoint", true).unwrap();
        assert_eq!((e.https, e.authority.as_str(), e.base_path.as_str()), (true, "acct.blob.core.windows.net", ""));
        for bad in
            ["ftp://x", "127.0.0.1:10000", "http://", "http://u:p@host", "http://h/?x", "file:///etc", "http://h/a%20b"]
        {
            assert!(matches!(parse_endpoint(bad, "azure_endpoint", true), Err(Error::InvalidConfig(_))), "{bad}");
        }
        let Err(Error::InvalidConfig(m)) = parse_endpoint("http://h/a%20b", "azure_endpoint", true) else { panic!() };
        assert_eq!(
            m,
            "azure_endpoint \"http://h/a%20b\" is not a valid URL: only scheme, host, port and path are allowed"
        );
        let Err(Error::InvalidConfig(m)) =
            parse_endpoint("ftp://secret", "the connection string's BlobEndpoint", false)
        else {
            panic!()
        };
        assert_eq!(
            m,
            "the connection string's BlobEndpoint is not a valid URL: it must start with http:// or https://"
        );
    }

    /// `Debug` never shows the key or the SAS token.
    #[test]
    fn debug_hides_secrets() {
        let c = AzureConfig::from_config(&config(
            &[("container", "c01")],
            &[("account_name", "secretacct"), ("account_key", KEY), ("sas_token", "sig=TOKENTOKEN")],
        ))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("SharedKey(<redacted>)"), "{shown}");
        assert!(!shown.contains(KEY) && !shown.contains("TOKENTOKEN"), "{shown}");
    }
}
