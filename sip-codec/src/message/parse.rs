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
    // Nearly every message: skip the number parsing.
    if major == b"2" && minor == b"0" {
        return Ok(Version::SIP_2_0);
    }
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

/// Splits `field-name HCOLON value` into the name and where the untrimmed value starts.
/// Hand-written rather than nom because it runs once per header line.
fn split_header_line(line: &[u8]) -> Option<(&[u8], usize)> {
    let name_end = line
        .iter()
        .position(|&c| !is_token_byte(c))
        .unwrap_or(line.len());
    if name_end == 0 {
        return None;
    }
    let mut i = name_end;
    while matches!(line.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return None;
    }
    Some((&line[..name_end], i + 1))
}

/// `s` without leading and trailing SP and HTAB. Bytewise: `trim_matches` with a char set
/// showed in the profile.
fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// A parsed head and where the message's body starts in the input.
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Headers,
    /// Offset of the body: just after the empty line, or the end of the input when the head's
    /// last line is complete but no empty line follows.
    pub(crate) body_start: usize,
    /// How many Content-Length fields were received (framing refuses more than one).
    pub(crate) content_lengths: usize,
}

/// Where the one-pass parse stopped with an error; decides which error the caller sees (see
/// [`parse_head`]).
enum Stage {
    StartLine,
    Headers,
    Unterminated,
}

/// Parses the start line and header lines at the beginning of `data`, up to the first empty
/// line (lines end in CRLF or, leniently, a bare LF). Without an empty line, the head is all of
/// `data` if its last line is complete (a datagram is self-delimiting: seen in the RFC 5118
/// examples); otherwise the head is not terminated.
///
/// One pass over the bytes finds the line ends, the end of the head and the header fields
/// together (finding the end first and then splitting lines scanned every line twice). Errors
/// are reported as if checked in this order: head not terminated, start line, header section
/// not UTF-8, header lines.
pub(crate) fn parse_head(data: &[u8], limits: &Limits) -> Result<Head, ParseError> {
    match parse_head_once(data, limits) {
        Ok(head) => Ok(head),
        Err((stage, e)) => Err(first_error(data, stage, e)),
    }
}

/// The error a check in the documented order would have met first. Only on the error path:
/// the one pass stops at the first problem it meets, which may lie before a later reason
/// that ranks higher (a missing empty line, a non-UTF-8 byte).
#[cold]
fn first_error(data: &[u8], stage: Stage, e: ParseError) -> ParseError {
    let Some((head_end, _)) = find_head_end(data).or_else(|| {
        // A complete last line ends a head that lacks the empty line.
        data.ends_with(b"\n").then_some((data.len(), data.len()))
    }) else {
        return ParseError::framing("Header section not terminated");
    };
    match stage {
        Stage::Unterminated => ParseError::framing("Header section not terminated"),
        Stage::StartLine => e,
        Stage::Headers => {
            let first_end = memchr::memchr(b'\n', data).map_or(data.len(), |p| p + 1);
            let section = data.get(first_end..head_end).unwrap_or_default();
            if std::str::from_utf8(section).is_err() {
                return not_utf8();
            }
            e
        }
    }
}

fn not_utf8() -> ParseError {
    ParseError::header("Header section is not UTF-8")
}

/// Finds the empty line ending a head: returns (start of that line, start of body).
pub(crate) fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    for p in memchr::memchr_iter(b'\n', data) {
        match data.get(p + 1..) {
            Some([b'\n', ..]) => return Some((p + 1, p + 2)),
            Some([b'\r', b'\n', ..]) => return Some((p + 1, p + 3)),
            _ => {}
        }
    }
    None
}

fn parse_head_once(data: &[u8], limits: &Limits) -> Result<Head, (Stage, ParseError)> {
    let hdr = |e| (Stage::Headers, e);
    let Some(first_end) = memchr::memchr(b'\n', data) else {
        return Err((Stage::Unterminated, ParseError::framing("")));
    };
    let first = &data[..first_end];
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.len() > limits.max_header_line {
        return Err((Stage::StartLine, ParseError::limit("Start line too long")));
    }
    let start = parse_start_line(first).map_err(|e| (Stage::StartLine, e))?;
    // The header section: values are first recorded as ranges into it, then built once its
    // end is known and it has passed one UTF-8 check (cheaper than one check per value).
    let section_start = first_end + 1;
    // Enough for typical messages; a count of the lines first cost more than a rare regrowth.
    let mut headers: Vec<Header> = Vec::with_capacity(16.min(limits.max_headers + 1));
    // The unfolded value of the last header while continuation lines are being joined; it
    // replaces that header's value when the next header starts or the head ends.
    let mut folded: Option<String> = None;
    // Both limits count what the canonical form (`message::serialize`) will hold, so that
    // whatever is accepted here is accepted again when written out and re-parsed: that form
    // writes every field on its own line as `Full-Name: value`, drops every Content-Length
    // field and adds exactly one. Without this, 128 fields and no Content-Length passed and
    // their canonical form (129 fields) was refused, and so was a compact `v:` line just under
    // the length limit once written as `Via: `.
    let mut content_lengths = 0;
    let mut pos = section_start;
    let (section_end, body_start) = loop {
        if pos >= data.len() {
            // The last line was complete (it ended in LF) and no empty line followed.
            break (data.len(), data.len());
        }
        let Some(nl) = memchr::memchr(b'\n', &data[pos..]) else {
            return Err((Stage::Unterminated, ParseError::framing("")));
        };
        let line_start = pos;
        let line = &data[pos..pos + nl];
        pos += nl + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break (line_start, pos);
        }
        if matches!(line[0], b' ' | b'\t') {
            let Some(last) = headers.last() else {
                return Err(hdr(ParseError::header(
                    "Continuation line without a header",
                )));
            };
            let value = match &mut folded {
                Some(v) => v,
                None => {
                    let first = match last.value.pending() {
                        Some((off, len)) => data
                            .get(section_start + off..section_start + off + len)
                            .and_then(|b| std::str::from_utf8(b).ok())
                            .ok_or_else(|| hdr(not_utf8()))?,
                        None => &*last.value,
                    };
                    folded.insert(first.to_owned())
                }
            };
            let cont = std::str::from_utf8(trim_ws(line)).map_err(|_| hdr(not_utf8()))?;
            if !cont.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(cont);
            }
            if canonical_line_len(&last.name, value.len()) > limits.max_header_line {
                return Err(hdr(ParseError::limit("Header line too long")));
            }
            continue;
        }
        finish_fold(&mut headers, &mut folded);
        // The raw line can be longer than its canonical form (spaces around the colon), but
        // checking it first keeps a huge line from being classified before it is refused.
        if line.len() > limits.max_header_line {
            return Err(hdr(ParseError::limit("Header line too long")));
        }
        let (name, value_at) = split_header_line(line)
            .ok_or_else(|| hdr(ParseError::header("Malformed header line")))?;
        let name = HeaderName::parse_token(name);
        let value = trim_ws(&line[value_at..]);
        if name == HeaderName::ContentLength {
            content_lengths += 1;
        }
        // The fields written out: these, plus a Content-Length if none was received.
        if headers.len() + 1 + usize::from(content_lengths == 0) > limits.max_headers {
            return Err(hdr(ParseError::limit("Too many headers")));
        }
        if canonical_line_len(&name, value.len()) > limits.max_header_line {
            return Err(hdr(ParseError::limit("Header line too long")));
        }
        // `value` lies in `line`, which lies in `data`: its offset is the distance of the starts.
        let offset = value.as_ptr() as usize - data.as_ptr() as usize - section_start;
        headers.push(Header {
            name,
            value: HeaderValue::pending_at(offset, value.len()),
        });
    };
    finish_fold(&mut headers, &mut folded);
    if headers.len() + usize::from(content_lengths == 0) > limits.max_headers {
        return Err(hdr(ParseError::limit("Too many headers")));
    }
    let section = data.get(section_start..section_end).unwrap_or_default();
    let section = std::str::from_utf8(section).map_err(|_| hdr(not_utf8()))?;
    // Long values become views into one copy of the header section, made when the first of
    // them is met; short ones are stored inline (see `HeaderValue`).
    let mut shared = None;
    for h in &mut headers {
        if let Some((offset, len)) = h.value.pending() {
            // The range was cut at ASCII bytes (colon, white space, line ends), so it lies on
            // char boundaries of the checked section.
            let part = section
                .get(offset..offset + len)
                .ok_or_else(|| hdr(not_utf8()))?;
            h.value.set_from_head(section, &mut shared, offset, part);
        }
    }
    Ok(Head {
        start,
        headers: Headers(headers),
        body_start,
        content_lengths,
    })
}

/// Gives the last header its unfolded value, if continuation lines were joined to it.
#[inline]
fn finish_fold(headers: &mut [Header], folded: &mut Option<String>) {
    if let (Some(value), Some(last)) = (folded.take(), headers.last_mut()) {
        last.value = value.into();
    }
}

/// The length of `Full-Name: value`, the line the canonical form writes for a header.
fn canonical_line_len(name: &HeaderName, value_len: usize) -> usize {
    name.as_str().len() + 2 + value_len
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
        let h = parse_head(
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP a\r\n ;branch=z9hG4bKx\r\nl :0\r\n",
            &Limits::default(),
        )
        .unwrap()
        .headers;
        assert_eq!(h.0[0].name, HeaderName::Via);
        assert_eq!(h.0[0].value, "SIP/2.0/UDP a ;branch=z9hG4bKx");
        assert_eq!(h.content_length().unwrap(), Some(0));
    }
}
