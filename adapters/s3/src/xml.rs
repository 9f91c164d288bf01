//! S3 XML bodies: ListObjectsV2 results, error documents, DeleteObjects requests and results.
//! Parsed with quick-xml's serde support; unknown elements are ignored.

use percent_encoding::percent_decode_str;
use quick_xml::escape::escape;
use serde::Deserialize;

/// `ListBucketResult` of ListObjectsV2 (only the fields stowage uses).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListBucketResult {
    #[serde(default)]
    pub is_truncated: bool,
    #[serde(default)]
    pub next_continuation_token: Option<String>,
    /// `url` when the request asked for `encoding-type=url`; keys are then URL-encoded.
    #[serde(default)]
    pub encoding_type: Option<String>,
    #[serde(default)]
    pub key_count: Option<u64>,
    #[serde(default)]
    pub contents: Vec<Contents>,
}

/// One `<Contents>` element of a listing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contents {
    pub key: String,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default, rename = "ETag")]
    pub etag: Option<String>,
    #[serde(default)]
    pub size: u64,
}

/// An S3 error document: `<Error><Code>..</Code><Message>..</Message>..</Error>`.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
    /// The region the bucket lives in (AuthorizationHeaderMalformed, PermanentRedirect).
    #[serde(default)]
    pub region: Option<String>,
}

/// `DeleteResult` of DeleteObjects (quiet mode lists only failures).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResult {
    #[serde(default, rename = "Error")]
    pub errors: Vec<DeleteError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteError {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub code: String,
}

/// Why a body could not be read; the message names the document, never its content.
#[derive(Debug)]
pub struct ParseError(pub &'static str);

pub fn parse_list(body: &[u8]) -> Result<ListBucketResult, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError("ListObjectsV2 result is not UTF-8"))?;
    let mut result: ListBucketResult =
        quick_xml::de::from_str(text).map_err(|_| ParseError("ListObjectsV2 result is not valid XML"))?;
    if result.encoding_type.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("url")) {
        for item in &mut result.contents {
            item.key = url_decode(&item.key).ok_or(ParseError("ListObjectsV2 returned an undecodable key"))?;
        }
    }
    Ok(result)
}

/// Parses an error document; `None` when the body is empty or not an S3 error.
pub fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<Error") {
        return None;
    }
    quick_xml::de::from_str::<ErrorBody>(text).ok().filter(|e| !e.code.is_empty())
}

/// GetBucketLocation's `<LocationConstraint>region</LocationConstraint>`: the region, with AWS's
/// two legacy spellings mapped (empty: `us-east-1`; `EU`: `eu-west-1`). `None` for a body that
/// is not such a document or names no valid region.
pub fn parse_location(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct LocationConstraint {
        #[serde(default, rename = "$text")]
        region: Option<String>,
    }
    let text = std::str::from_utf8(body).ok().filter(|t| t.contains("<LocationConstraint"))?;
    let parsed: LocationConstraint = quick_xml::de::from_str(text).ok()?;
    let region = match parsed.region.as_deref().map(str::trim) {
        None | Some("") => crate::config::DEFAULT_REGION,
        Some("EU") => "eu-west-1",
        Some(region) => region,
    };
    crate::config::valid_region(region).then(|| region.to_string())
}

pub fn parse_delete_result(body: &[u8]) -> Result<DeleteResult, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeleteResult::default());
    }
    let text = std::str::from_utf8(body).map_err(|_| ParseError("DeleteObjects result is not UTF-8"))?;
    quick_xml::de::from_str(text).map_err(|_| ParseError("DeleteObjects result is not valid XML"))
}

/// Decodes a key of an `encoding-type=url` listing. AWS form-encodes (space as `+`, `+` as `%2B`),
/// as botocore's `unquote_plus` expects, so `+` is a space here.
pub fn url_decode(key: &str) -> Option<String> {
    let plus_as_space = key.replace('+', " ");
    percent_decode_str(&plus_as_space).decode_utf8().ok().map(|k| k.into_owned())
}

/// Whether `key` can travel in an XML 1.0 document (DeleteObjects); control characters other
/// than tab, LF and CR cannot.
pub fn xml_safe(key: &str) -> bool {
    key.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

/// A quiet DeleteObjects request body for `keys` (each must be [`xml_safe`]).
pub fn delete_request(keys: &[&str]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#,
    );
    for key in keys {
        body.push_str("<Object><Key>");
        // Newlines and CRs would be normalised by the XML parser; keep them as character references.
        body.push_str(&escape(*key).replace('\r', "&#13;").replace('\n', "&#10;"));
        body.push_str("</Key></Object>");
    }
    body.push_str("</Delete>");
    body
}

#[cfg(test)]
mod tests {
    use stowage_sdk::http::unquote_etag;
    use stowage_sdk::time::rfc3339_millis;

    use super::*;

    /// The ListObjectsV2 example of the AWS API reference, with `encoding-type=url` keys.
    #[test]
    fn list_result() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>a%2F</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>3</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>a/my+file%2B1%25.txt</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>a/%C3%A9t%C3%A9%3F%23.json</Key>
    <LastModified>2009-10-12T17:50:31.000Z</LastModified>
    <ETag>"599bab3ed2c697f1d26842727561fd94-2"</ETag>
    <Size>2</Size>
  </Contents>
  <Contents>
    <Key>a/dir/</Key>
    <LastModified>2009-10-12T17:50:31.000Z</LastModified>
    <Size>0</Size>
  </Contents>
  <CommonPrefixes><Prefix>a%2Fsub%2F</Prefix></CommonPrefixes>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let r = parse_list(body).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.next_continuation_token.as_deref(), Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="));
        let keys: Vec<&str> = r.contents.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a/my file+1%.txt", "a/été?#.json", "a/dir/"]);
        assert_eq!(r.contents[0].size, 434234);
        assert_eq!(unquote_etag(r.contents[0].etag.as_deref().unwrap()), "fba9dede5f27731c9771645a39863328");
        assert_eq!(rfc3339_millis(r.contents[0].last_modified.as_deref().unwrap()), Some(1_255_369_830_000));
    }

    /// Without encoding-type the keys are taken as they are; an empty bucket has no Contents.
    #[test]
    fn list_result_plain_and_empty() {
        let r =
            parse_list(b"<ListBucketResult><Contents><Key>a+b%20c</Key><Size>1</Size></Contents></ListBucketResult>")
                .unwrap();
        assert_eq!(r.contents[0].key, "a+b%20c");
        assert!(!r.is_truncated);
        let r =
            parse_list(b"<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>")
                .unwrap();
        assert!(r.contents.is_empty());
        assert_eq!(r.key_count, Some(0));
        assert!(parse_list(b"not xml <").is_err());
    }

    #[test]
    fn error_documents() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        let e = parse_error(body).unwrap();
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.message.as_deref(), Some("The resource you requested does not exist"));
        assert_eq!(parse_error(b""), None);
        assert_eq!(parse_error(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn delete_bodies() {
        let body = delete_request(&["a&b<c>.txt", "x\ny"]);
        assert!(body.contains("<Object><Key>a&amp;b&lt;c&gt;.txt</Key></Object>"), "{body}");
        assert!(body.contains("<Key>x&#10;y</Key>"), "{body}");
        assert!(body.contains("<Quiet>true</Quiet>"));
        assert!(xml_safe("tab\there") && !xml_safe("nul\u{0}"));
        let r = parse_delete_result(br#"<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"#).unwrap();
        assert_eq!(r.errors.len(), 1);
        assert_eq!((r.errors[0].key.as_str(), r.errors[0].code.as_str()), ("b", "AccessDenied"));
        assert!(parse_delete_result(b"").unwrap().errors.is_empty());
    }

    /// GetBucketLocation answers of AWS (empty = us-east-1, `EU`) and of Garage.
    #[test]
    fn location_constraints() {
        let doc = |inner: &str| {
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</LocationConstraint>"#
            )
        };
        assert_eq!(parse_location(doc("eu-central-1").as_bytes()).as_deref(), Some("eu-central-1"));
        assert_eq!(parse_location(doc("").as_bytes()).as_deref(), Some("us-east-1"));
        assert_eq!(parse_location(doc("EU").as_bytes()).as_deref(), Some("eu-west-1"));
        assert_eq!(parse_location(doc("garage").as_bytes()).as_deref(), Some("garage"));
        let empty = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(parse_location(empty.as_bytes()).as_deref(), Some("us-east-1"));
        assert_eq!(parse_location(doc("a/b").as_bytes()), None);
        assert_eq!(parse_location(b"not xml <"), None);
        assert_eq!(parse_location(b"<html><body>hello</body></html>"), None);
    }
}
