//! The nom grammar of the start line and header lines (RFC 3261 §7.1, §7.2, §7.3.1).

use nom::{
    IResult, Parser,
    bytes::complete::{tag, tag_no_case, take_while_m_n, take_while1},
    character::complete::digit1,
    combinator::all_consuming,
};

use super::{StartLine, Version};
use crate::error::ParseError;
use crate::header::{Header, HeaderName, HeaderValue, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::uri::Uri;

/// Major and minor digits of a SIP-Version.
type VersionDigits<'a> = (&'a [u8], &'a [u8]);
/// Method, Request-URI and version of a Request-Line.
type RequestParts<'a> = (&'a [u8], &'a [u8], VersionDigits<'a>);
/// Version, status code and reason phrase of a Status-Line.
type StatusParts<'a> = (VersionDigits<'a>, &'a [u8], &'a [u8]);

/// `token` bytes as a lookup table: checked for every byte of every header name.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
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

/// Splits `field-name HCOLON value` into name and untrimmed value. Hand-written rather than
/// nom because it runs once per header line and dominates parse time.
fn split_header_line(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let name_end = b.iter().position(|&c| !is_token_byte(c)).unwrap_or(b.len());
    if name_end == 0 {
        return None;
    }
    let mut i = name_end;
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((&line[..name_end], &line[i + 1..]))
}

/// `s` without leading and trailing SP and HTAB. Bytewise: `trim_matches` with a char set
/// showed in the profile.
fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    // Both ends border ASCII white space or the ends of `s`, so they are char boundaries.
    &s[start..end]
}

/// Parses the start line and header lines of `head` (everything before the empty line;
/// lines end in CRLF or, leniently, a bare LF).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<(StartLine, Headers), ParseError> {
    let first_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let first = &head[..first_end];
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.len() > limits.max_header_line {
        return Err(ParseError::limit("Start line too long"));
    }
    let start = parse_start_line(first)?;
    let rest = head.get(first_end + 1..).unwrap_or_default();
    // One UTF-8 check for the whole header section is cheaper than one per value.
    let rest =
        std::str::from_utf8(rest).map_err(|_| ParseError::header("Header section is not UTF-8"))?;
    // Long values that need no unfolding become views into one copy of the header section,
    // made when the first of them is met; short ones are stored inline (see `HeaderValue`).
    let mut shared = None;
    let text = rest;
    // Enough for typical messages; a count of the lines first cost more than a rare regrowth.
    let mut headers: Vec<Header> = Vec::with_capacity(16.min(limits.max_headers + 1));
    // The unfolded value of the last header while continuation lines are being joined; it
    // replaces that header's view when the next header starts or the head ends.
    let mut folded: Option<String> = None;
    // Both limits count what the canonical form (`message::serialize`) will hold, so that
    // whatever is accepted here is accepted again when written out and re-parsed: that form
    // writes every field on its own line as `Full-Name: value`, drops every Content-Length
    // field and adds exactly one. Without this, 128 fields and no Content-Length passed and
    // their canonical form (129 fields) was refused, and so was a compact `v:` line just under
    // the length limit once written as `Via: `.
    let mut content_length_seen = false;
    let mut pos = 0;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text.as_bytes()[pos..]).map_or(text.len(), |e| pos + e);
        // `\n` is ASCII, so both ends are char boundaries.
        let line = &text[pos..end];
        pos = end + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            // Only a stray empty line (the head ends before the blank one) gets here.
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.last() else {
                return Err(ParseError::header("Continuation line without a header"));
            };
            let value = folded.get_or_insert_with(|| String::from(&*last.value));
            let cont = trim_ws(line);
            if !cont.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(cont);
            }
            if canonical_line_len(&last.name, value) > limits.max_header_line {
                return Err(ParseError::limit("Header line too long"));
            }
            continue;
        }
        finish_fold(&mut headers, &mut folded);
        // The raw line can be longer than its canonical form (spaces around the colon), but
        // checking it first keeps a huge line from being classified before it is refused.
        if line.len() > limits.max_header_line {
            return Err(ParseError::limit("Header line too long"));
        }
        let (name, value) =
            split_header_line(line).ok_or_else(|| ParseError::header("Malformed header line"))?;
        let name = HeaderName::parse(name);
        let value = trim_ws(value);
        content_length_seen |= name == HeaderName::ContentLength;
        // The fields written out: these, plus a Content-Length if none was received.
        if headers.len() + 1 + usize::from(!content_length_seen) > limits.max_headers {
            return Err(ParseError::limit("Too many headers"));
        }
        if canonical_line_len(&name, value) > limits.max_header_line {
            return Err(ParseError::limit("Header line too long"));
        }
        // `value` is a subslice of `text`: its offset is the distance between their starts.
        let offset = value.as_ptr() as usize - text.as_ptr() as usize;
        headers.push(Header {
            name,
            value: HeaderValue::from_head(text, &mut shared, offset, value),
        });
    }
    finish_fold(&mut headers, &mut folded);
    if headers.len() + usize::from(!content_length_seen) > limits.max_headers {
        return Err(ParseError::limit("Too many headers"));
    }
    Ok((start, Headers(headers)))
}

/// Gives the last header its unfolded value, if continuation lines were joined to it.
#[inline]
fn finish_fold(headers: &mut [Header], folded: &mut Option<String>) {
    if let (Some(value), Some(last)) = (folded.take(), headers.last_mut()) {
        last.value = value.into();
    }
}

/// The length of `Full-Name: value`, the line the canonical form writes for a header.
fn canonical_line_len(name: &HeaderName, value: &str) -> usize {
    name.as_str().len() + 2 + value.len()
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
