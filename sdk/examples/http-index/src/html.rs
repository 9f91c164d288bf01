//! The entries of a directory listing page, as served by `python3 -m http.server`, nginx
//! (`autoindex on`) and Apache (`mod_autoindex`): every `<a href="...">` of the page that names a
//! direct child, `name` for a file and `name/` for a folder.
//!
//! A tiny scanner rather than an HTML parser: listing pages are machine-written and simple, and
//! the adapter stays small. What the three servers write, for a folder holding `a b.json` and `sub/`:
//!
//! ```text
//! python: <li><a href="a%20b.json">a b.json</a></li>  <li><a href="sub/">sub/</a></li>
//! nginx:  <a href="../">../</a>  <a href="a%20b.json">a b.json</a>  <a href="sub/">sub/</a>
//! apache: <a href="?C=N;O=D">Name</a>  <a href="/parent/">Parent Directory</a>
//!         <a href="a%20b.json">a b.json</a>  <a href="./c:d.json">c:d.json</a>  <a href="sub/">sub/</a>
//! ```

use std::collections::BTreeSet;

use percent_encoding::percent_decode_str;

/// One child of a listed folder, its name percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// A file: `href="name"`.
    File(String),
    /// A folder: `href="name/"` (the name without its `/`).
    Folder(String),
}

/// The children a listing page links to, sorted and without duplicates (Apache's fancy index
/// links each name twice: the icon and the name). Skipped: parent links (`../`), sort links
/// (`?C=N;O=D`), fragments, absolute paths (`/parent/`), links with a scheme (`https://other/`,
/// `mailto:`), links deeper than one level, and names that do not decode to UTF-8.
pub fn links(page: &str) -> Vec<Link> {
    hrefs(page).into_iter().filter_map(|href| link_of(&unescape(href))).collect::<BTreeSet<_>>().into_iter().collect()
}

/// The raw `href` values of the `<a>` tags of `page`, in page order.
fn hrefs(page: &str) -> Vec<&str> {
    // ASCII lower-casing keeps byte offsets, so indices into `lower` are indices into `page`.
    let lower = page.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<a") {
        let start = from + at + 2;
        // A tag ends at the first `>`: listing pages never put one inside an attribute value.
        let Some(len) = lower[start..].find('>') else { break };
        from = start + len;
        // `<a ...>`, not `<abbr>` or `<address>`.
        if !lower[start..].starts_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        if let Some(href) = attribute(&page[start..from], &lower[start..from], "href") {
            out.push(href);
        }
    }
    out
}

/// The value of attribute `name` (lower case) in the inside of a tag: `name="v"`, `name='v'` or `name=v`.
fn attribute<'a>(tag: &'a str, lower: &str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let i = from + at;
        from = i + name.len();
        // A whole attribute name, not the end of `data-href`.
        if !lower[..i].ends_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let Some(value) = tag[from..].trim_start().strip_prefix('=') else { continue };
        let value = value.trim_start();
        return match value.chars().next()? {
            quote @ ('"' | '\'') => {
                let value = &value[1..];
                value.find(quote).map(|end| &value[..end])
            }
            _ => Some(&value[..value.find(|c: char| c.is_ascii_whitespace()).unwrap_or(value.len())]),
        };
    }
    None
}

/// Decodes the character references servers put in attribute values (`&amp;` from Apache).
fn unescape(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The child an `href` names, if it names a direct child of the page's folder.
fn link_of(href: &str) -> Option<Link> {
    // A scheme (`https:`, `mailto:`) comes before any `/`; Apache writes `./c:d` so that a
    // name with a colon is not read as one.
    let first_segment = href.split('/').next().unwrap_or("");
    if first_segment.contains(':') || href.starts_with('/') || href.contains(['?', '#']) {
        return None;
    }
    let href = href.strip_prefix("./").unwrap_or(href);
    let (name, folder) = match href.strip_suffix('/') {
        Some(name) => (name, true),
        None => (href, false),
    };
    // `..` is the parent; a `/` inside is not a direct child (listings link one level only).
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    let name = percent_decode_str(name).decode_utf8().ok()?;
    // An encoded `/` (`%2F`) cannot be part of a key segment.
    if name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let name = name.into_owned();
    Some(if folder { Link::Folder(name) } else { Link::File(name) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Link {
        Link::File(name.into())
    }

    fn folder(name: &str) -> Link {
        Link::Folder(name.into())
    }

    /// `python3 -m http.server` (Lib/http/server.py `list_directory`): `urllib.parse.quote`d hrefs.
    #[test]
    fn python_http_server_pages() {
        let page = r#"<!DOCTYPE HTML>
<html lang="en">
<head><meta charset="utf-8"><title>Directory listing for /</title></head>
<body>
<h1>Directory listing for /</h1>
<hr>
<ul>
<li><a href="a.json">a.json</a></li>
<li><a href="hash%23tag.json">hash#tag.json</a></li>
<li><a href="per%25cent.json">per%cent.json</a></li>
<li><a href="plus%2Bsign.json">plus+sign.json</a></li>
<li><a href="reports/">reports/</a></li>
<li><a href="unicod%C3%A9-%E6%97%A5%E6%9C%AC.json">unicodé-日本.json</a></li>
<li><a href="with%20space.json">with space.json</a></li>
</ul>
<hr>
</body>
</html>"#;
        assert_eq!(
            links(page),
            [
                file("a.json"),
                file("hash#tag.json"),
                file("per%cent.json"),
                file("plus+sign.json"),
                file("unicodé-日本.json"),
                file("with space.json"),
                folder("reports"),
            ]
        );
    }

    /// nginx `autoindex on` (ngx_http_autoindex_module): a parent link and escaped names.
    #[test]
    fn nginx_autoindex_pages() {
        let page = "<html>\r\n<head><title>Index of /data/</title></head>\r\n<body>\r\n<h1>Index of /data/</h1><hr><pre>\
            <a href=\"../\">../</a>\r\n\
            <a href=\"sub/\">sub/</a>                                              01-Jan-2025 10:00       -\r\n\
            <a href=\"a%20b.json\">a b.json</a>                                          01-Jan-2025 10:00      12\r\n\
            </pre><hr></body>\r\n</html>";
        assert_eq!(links(page), [file("a b.json"), folder("sub")]);
    }

    /// Apache `mod_autoindex` with FancyIndexing: sort links, an absolute parent link, icon and
    /// name links to the same entry, `./` before a name with a colon, `&amp;` in attributes.
    #[test]
    fn apache_autoindex_pages() {
        let page = r#"<html><head><title>Index of /data</title></head><body><h1>Index of /data</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/"><img src="/icons/back.gif" alt="[PARENTDIR]"></a></td><td><a href="/">Parent Directory</a></td></tr>
<tr><td><a href="a%20b.json"><img src="/icons/text.gif" alt="[TXT]"></a></td><td><a href="a%20b.json">a b.json</a></td></tr>
<tr><td><a href="./c:d.json">c:d.json</a></td></tr>
<tr><td><a href="x&amp;y.json">x&amp;y.json</a></td></tr>
<tr><td><A HREF='sub/'>sub/</A></td></tr>
</table><address>Apache Server at localhost Port 80</address></body></html>"#;
        assert_eq!(links(page), [file("a b.json"), file("c:d.json"), file("x&y.json"), folder("sub")]);
    }

    /// Links that do not name a direct child are skipped.
    #[test]
    fn other_links_are_skipped() {
        let page = r##"<a href="https://example.com/x.json">x</a> <a href="//cdn.example.com/y.json">y</a>
            <a href="mailto:me@example.com">me</a> <a href="#top">top</a> <a href="deep/er.json">deep</a>
            <a href="..">up</a> <a href="./">here</a> <a href="a%2Fb.json">slash</a> <a href="bad%FF.json">bad</a>
            <a data-href="no.json">no</a> <abbr title="x">x</abbr> <a name="anchor">anchor</a>
            <a class=x href=plain.json>plain</a>"##;
        assert_eq!(links(page), [file("plain.json")]);
    }
}
