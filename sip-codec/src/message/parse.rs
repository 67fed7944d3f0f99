//! The nom grammar of the start line and header lines (RFC 3261 §7.1, §7.2, §7.3.1).

use nom::{
    IResult, Parser,
    bytes::complete::{tag, tag_no_case, take_while_m_n, take_while1},
    character::complete::digit1,
    combinator::all_consuming,
};

use super::{StartLine, Version};
use crate::error::ParseError;
use crate::header::{Header, HeaderName, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::uri::Uri;

/// Major and minor digits of a SIP-Version.
type VersionDigits<'a> = (&'a [u8], &'a [u8]);
/// Method, Request-URI and version of a Request-Line.
type RequestParts<'a> = (&'a [u8], &'a [u8], VersionDigits<'a>);
/// Version, status code and reason phrase of a Status-Line.
type StatusParts<'a> = (VersionDigits<'a>, &'a [u8], &'a [u8]);

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn version(i: &[u8]) -> IResult<&[u8], VersionDigits<'_>> {
    let (i, _) = tag_no_case("SIP/").parse(i)?;
    let (i, major) = digit1(i)?;
    let (i, _) = tag(".").parse(i)?;
    let (i, minor) = digit1(i)?;
    Ok((i, (major, minor)))
}

fn to_version(major: &[u8], minor: &[u8]) -> Result<Version, ParseError> {
    let num = |d: &[u8]| {
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
    };
    match (num(major), num(minor)) {
        (Some(major), Some(minor)) => Ok(Version { major, minor }),
        _ => Err(ParseError::start_line("SIP version number too large")),
    }
}

/// `Method SP Request-URI SP SIP-Version`
fn request_line(i: &[u8]) -> IResult<&[u8], RequestParts<'_>> {
    let (i, method) = take_while1(is_token_byte).parse(i)?;
    let (i, _) = tag(" ").parse(i)?;
    let (i, uri) = take_while1(|b: u8| b > b' ' && b != 0x7f).parse(i)?;
    let (i, _) = tag(" ").parse(i)?;
    let (i, v) = all_consuming(version).parse(i)?;
    Ok((i, (method, uri, v)))
}

/// `SIP-Version SP Status-Code SP Reason-Phrase`
fn status_line(i: &[u8]) -> IResult<&[u8], StatusParts<'_>> {
    let (i, v) = version(i)?;
    let (i, _) = tag(" ").parse(i)?;
    let (i, code) = take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()).parse(i)?;
    if i.is_empty() {
        // Tolerate a missing SP before an empty reason phrase.
        return Ok((i, (v, code, i)));
    }
    let (reason, _) = tag(" ").parse(i)?;
    Ok((&reason[reason.len()..], (v, code, reason)))
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let (_, ((ma, mi), code, reason)) =
            status_line(line).map_err(|_| ParseError::start_line("Malformed Status-Line"))?;
        let version = to_version(ma, mi)?;
        let status: u16 = std::str::from_utf8(code)
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if !(100..=699).contains(&status) {
            return Err(ParseError::start_line("Status code out of range"));
        }
        let reason = std::str::from_utf8(reason)
            .map_err(|_| ParseError::start_line("Reason phrase is not UTF-8"))?;
        if reason.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err(ParseError::start_line("Control character in reason phrase"));
        }
        return Ok(StartLine::Response {
            version,
            status,
            reason: reason.to_owned(),
        });
    }
    let (_, (method, uri, (ma, mi))) =
        request_line(line).map_err(|_| ParseError::start_line("Malformed Request-Line"))?;
    let version = to_version(ma, mi)?;
    // Both slices hold only token/visible ASCII bytes, so they are UTF-8.
    let method =
        std::str::from_utf8(method).map_err(|_| ParseError::start_line("Malformed method"))?;
    let uri =
        std::str::from_utf8(uri).map_err(|_| ParseError::start_line("Malformed Request-URI"))?;
    let uri = Uri::parse(uri).map_err(|_| ParseError::start_line("Malformed Request-URI"))?;
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri,
        version,
    })
}

/// `field-name HCOLON` — returns the name and the rest of the line after the colon.
fn header_name(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (i, name) = take_while1(is_token_byte).parse(i)?;
    let (i, _) = take_while_m_n(0, usize::MAX, |b| b == b' ' || b == b'\t').parse(i)?;
    let (i, _) = tag(":").parse(i)?;
    Ok((i, name))
}

fn trim_ws(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Parses the start line and header lines of `head` (everything before the empty line;
/// lines end in CRLF or, leniently, a bare LF).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<(StartLine, Headers), ParseError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    if first.len() > limits.max_header_line {
        return Err(ParseError::limit("Start line too long"));
    }
    let start = parse_start_line(first)?;
    let mut headers: Vec<Header> = Vec::with_capacity(16);
    let mut pending: Option<(HeaderName, Vec<u8>)> = None;
    let finish =
        |p: Option<(HeaderName, Vec<u8>)>, headers: &mut Vec<Header>| -> Result<(), ParseError> {
            if let Some((name, raw)) = p {
                let value = String::from_utf8(raw)
                    .map_err(|_| ParseError::header("Header value is not UTF-8"))?;
                headers.push(Header { name, value });
            }
            Ok(())
        };
    for line in lines {
        if line.is_empty() {
            // split() yields one empty piece after the final newline.
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some((_, raw)) = pending.as_mut() else {
                return Err(ParseError::header("Continuation line without a header"));
            };
            let cont = trim_ws(line);
            if !cont.is_empty() {
                if !raw.is_empty() {
                    raw.push(b' ');
                }
                raw.extend_from_slice(cont);
            }
            if raw.len() > limits.max_header_line {
                return Err(ParseError::limit("Header line too long"));
            }
            continue;
        }
        finish(pending.take(), &mut headers)?;
        if headers.len() >= limits.max_headers {
            return Err(ParseError::limit("Too many headers"));
        }
        if line.len() > limits.max_header_line {
            return Err(ParseError::limit("Header line too long"));
        }
        let (value, name) =
            header_name(line).map_err(|_| ParseError::header("Malformed header line"))?;
        // Token bytes are ASCII, so this cannot fail.
        let name =
            std::str::from_utf8(name).map_err(|_| ParseError::header("Malformed header name"))?;
        pending = Some((HeaderName::parse(name), trim_ws(value).to_vec()));
    }
    finish(pending, &mut headers)?;
    Ok((start, Headers(headers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert!(matches!(
            parse_start_line(b"SIP/2.0 100 "),
            Ok(StartLine::Response { status: 100, .. })
        ));
        assert!(parse_start_line(b"SIP/2.0 4294967301 better not break the receiver").is_err());
        assert!(parse_start_line(b"INVITE  sip:user@example.com  SIP/2.0").is_err());
        assert!(parse_start_line(b"OPTIONS sip:a@example.com SIP/2.0  ").is_err());
        assert!(parse_start_line(b"INVITE <sip:user@example.com> SIP/2.0").is_err());
        assert!(matches!(
            parse_start_line(b"OPTIONS sip:t.watson@example.org SIP/7.0"),
            Ok(StartLine::Request {
                version: Version { major: 7, minor: 0 },
                ..
            })
        ));
    }

    #[test]
    fn folding_and_compact_names() {
        let (_, h) = parse_head(
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP a\r\n ;branch=z9hG4bKx\r\nl :0\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.0[0].name, HeaderName::Via);
        assert_eq!(h.0[0].value, "SIP/2.0/UDP a ;branch=z9hG4bKx");
        assert_eq!(h.content_length().unwrap(), Some(0));
    }
}
