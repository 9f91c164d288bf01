//! Azure Blob XML bodies: List Blobs results and error documents.
//!
//! Read event by event with quick-xml (not serde) so that blob names come back exactly as stored:
//! no whitespace trimming, entity and character references resolved, and `<Name Encoded="true">`
//! (percent-encoded names holding characters XML 1.0 cannot carry) decoded. Unknown elements are
//! ignored.
//!
//! Shape of a List Blobs result
//! (<https://learn.microsoft.com/en-us/rest/api/storageservices/list-blobs#response-body>):
//! `EnumerationResults/Blobs/Blob/{Name, Properties/{Last-Modified, Etag, Content-Length}, Metadata/*}`,
//! `EnumerationResults/Blobs/BlobPrefix/Name` (folders of a delimited listing), `EnumerationResults/NextMarker`.

use percent_encoding::percent_decode_str;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// One `<Blob>` of a listing (only the fields stowage uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobItem {
    /// The blob name (the key), decoded.
    pub name: String,
    /// `Properties/Content-Length`, bytes.
    pub size: u64,
    /// `Properties/Etag`, as sent (Azure quotes it in headers, not always in listings).
    pub etag: Option<String>,
    /// `Properties/Last-Modified`, RFC 1123 (`Mon, 12 Oct 2009 17:50:30 GMT`).
    pub last_modified: Option<String>,
    /// `Metadata/hdi_isfolder` is `true`: a directory placeholder of a hierarchical-namespace
    /// account (Data Lake Gen2) or one made by Azure Storage Explorer, not a file.
    pub is_folder: bool,
}

/// A List Blobs result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListResult {
    pub blobs: Vec<BlobItem>,
    /// `NextMarker`: the `marker` of the next page; `None` (or empty) on the last page.
    pub next_marker: Option<String>,
}

/// Why a body could not be read; the message names the document, never its content.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// Metadata name of the directory flag (compared case-insensitively: metadata names are).
pub const FOLDER_METADATA: &str = "hdi_isfolder";

/// Parses a List Blobs result.
pub fn parse_list(body: &[u8]) -> Result<ListResult, ParseError> {
    const BAD: ParseError = ParseError("List Blobs result is not valid XML");
    let text = std::str::from_utf8(body).map_err(|_| ParseError("List Blobs result is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut path: Vec<String> = Vec::new();
    let mut buffer = String::new();
    let mut encoded_name = false;
    let mut item = BlobItem::default();
    let mut result = ListResult::default();
    loop {
        match reader.read_event().map_err(|_| BAD)? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "Name" && path.last().is_some_and(|p| p == "Blob") {
                    encoded_name = e
                        .attributes()
                        .flatten()
                        .any(|a| a.key.local_name().as_ref() == b"Encoded" && a.value.as_ref() == b"true");
                }
                if name == "Blob" && path.last().is_some_and(|p| p == "Blobs") {
                    item = BlobItem::default();
                }
                path.push(name);
                buffer.clear();
            }
            Event::Text(t) => buffer.push_str(&t.xml10_content().map_err(|_| BAD)?),
            Event::CData(t) => buffer.push_str(&t.decode().map_err(|_| BAD)?),
            Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|_| BAD)? {
                Some(c) => buffer.push(c),
                None => buffer.push_str(resolve_predefined_entity(&r.decode().map_err(|_| BAD)?).ok_or(BAD)?),
            },
            Event::End(_) => {
                let value = std::mem::take(&mut buffer);
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                match names.as_slice() {
                    [.., "Blobs", "Blob", "Name"] => {
                        item.name = if encoded_name {
                            percent_decode_str(&value)
                                .decode_utf8()
                                .map_err(|_| ParseError("List Blobs returned an undecodable name"))?
                                .into_owned()
                        } else {
                            value
                        };
                    }
                    [.., "Blob", "Properties", "Content-Length"] => {
                        item.size = value.trim().parse().map_err(|_| ParseError("List Blobs returned a bad size"))?;
                    }
                    [.., "Blob", "Properties", "Etag"] => item.etag = Some(value.trim().to_string()),
                    [.., "Blob", "Properties", "Last-Modified"] => item.last_modified = Some(value.trim().to_string()),
                    [.., "Blob", "Metadata", key] if key.eq_ignore_ascii_case(FOLDER_METADATA) => {
                        item.is_folder = value.trim().eq_ignore_ascii_case("true");
                    }
                    [.., "Blobs", "Blob"] => result.blobs.push(std::mem::take(&mut item)),
                    ["EnumerationResults", "NextMarker"] => {
                        result.next_marker = Some(value.trim().to_string()).filter(|m| !m.is_empty());
                    }
                    _ => {}
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(BAD);
    }
    Ok(result)
}

/// The `<Code>` of an Azure error document (`<Error><Code>..</Code><Message>..</Message></Error>`);
/// `None` when the body is empty or not such a document.
pub fn parse_error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<Error") {
        return None;
    }
    let mut reader = Reader::from_str(text);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut code = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
            Event::Text(t) if path.len() == 2 && path[0] == b"Error" && path[1] == b"Code" => {
                code.push_str(&t.decode().ok()?);
            }
            Event::End(_) => {
                if path.len() == 2 && path[1] == b"Code" {
                    break;
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let code = code.trim().to_string();
    (!code.is_empty()).then_some(code)
}

#[cfg(test)]
mod tests {
    use stowage_sdk::http::unquote_etag;
    use stowage_sdk::time::http_date_millis;

    use super::*;

    /// The List Blobs example of the REST reference (version 2021-08-06 shape), with a delimited
    /// folder, metadata and a name needing entity references.
    #[test]
    fn list_result() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://myaccount.blob.core.windows.net/" ContainerName="mycontainer">
  <Prefix>a/</Prefix>
  <Marker />
  <MaxResults>3</MaxResults>
  <Delimiter>/</Delimiter>
  <Blobs>
    <Blob>
      <Name> a/lead &amp; trail.txt </Name>
      <Properties>
        <Creation-Time>Mon, 12 Oct 2009 17:50:30 GMT</Creation-Time>
        <Last-Modified>Mon, 12 Oct 2009 17:50:30 GMT</Last-Modified>
        <Etag>0x8CBFF45D8A29A19</Etag>
        <Content-Length>434234</Content-Length>
        <Content-Type>text/plain</Content-Type>
        <BlobType>BlockBlob</BlobType>
      </Properties>
      <Metadata />
    </Blob>
    <BlobPrefix><Name>a/sub/</Name></BlobPrefix>
    <Blob>
      <Name>a/dir</Name>
      <Properties><Content-Length>0</Content-Length></Properties>
      <Metadata><hdi_isfolder>true</hdi_isfolder></Metadata>
    </Blob>
    <Blob>
      <Name Encoded="true">a/ctl%01%E6%97%A5.json</Name>
      <Properties><Content-Length>2</Content-Length><Etag>"0x1"</Etag></Properties>
      <Metadata><Other>x</Other></Metadata>
    </Blob>
  </Blobs>
  <NextMarker>2!80!MDAwMDE2IWEvY3RsAS5qc29uITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--</NextMarker>
</EnumerationResults>"#;
        let r = parse_list(body).unwrap();
        let names: Vec<&str> = r.blobs.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, [" a/lead & trail.txt ", "a/dir", "a/ctl\u{1}日.json"]);
        assert_eq!(r.blobs[0].size, 434_234);
        assert_eq!(r.blobs[0].etag.as_deref(), Some("0x8CBFF45D8A29A19"));
        assert_eq!(http_date_millis(r.blobs[0].last_modified.as_deref().unwrap()), Some(1_255_369_830_000));
        assert_eq!(r.blobs.iter().map(|b| b.is_folder).collect::<Vec<_>>(), [false, true, false]);
        assert_eq!(unquote_etag(r.blobs[2].etag.as_deref().unwrap()), "0x1");
        assert_eq!(
            r.next_marker.as_deref(),
            Some("2!80!MDAwMDE2IWEvY3RsAS5qc29uITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--")
        );
    }

    /// The last page has an empty `<NextMarker/>`; an empty container has an empty `<Blobs/>`.
    #[test]
    fn last_and_empty_pages() {
        let r = parse_list(b"<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>").unwrap();
        assert_eq!(r, ListResult::default());
        let r = parse_list(b"<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Content-Length>1</Content-Length></Properties></Blob></Blobs><NextMarker></NextMarker></EnumerationResults>").unwrap();
        assert_eq!((r.blobs.len(), r.next_marker), (1, None));
        assert!(parse_list(b"not xml <").is_err());
        assert!(parse_list(b"<EnumerationResults><Blobs>").is_err());
    }

    /// Error documents of the REST reference; non-error bodies have no code.
    #[test]
    fn error_documents() {
        let body = b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:9f3c\nTime:2021-08-06T00:00:00.0000000Z</Message></Error>";
        assert_eq!(parse_error_code(body).as_deref(), Some("ContainerNotFound"));
        let auth = br#"<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>The MAC signature found in the HTTP request 'abc=' is not the same as any computed signature.</AuthenticationErrorDetail></Error>"#;
        assert_eq!(parse_error_code(auth).as_deref(), Some("AuthenticationFailed"));
        assert_eq!(parse_error_code(b""), None);
        assert_eq!(parse_error_code(b"<html>bad gateway</html>"), None);
        assert_eq!(parse_error_code(b"<Error><Message>no code</Message></Error>"), None);
    }
}
