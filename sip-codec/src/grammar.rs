//! Character classes and small nom parsers shared by the RFC 3261 §25 grammar.

use nom::{
    IResult, Parser,
    bytes::complete::{take_while, take_while1},
    character::complete::char,
    error::{Error, ErrorKind},
};

/// `token` characters: alphanum and `-.!%*_+`'~`.
pub(crate) fn is_token(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

/// `word` characters (Call-ID): token plus `()<>:\"/[]?{}`.
pub(crate) fn is_word(c: char) -> bool {
    is_token(c)
        || matches!(
            c,
            '(' | ')' | '<' | '>' | ':' | '\\' | '"' | '/' | '[' | ']' | '?' | '{' | '}'
        )
}

/// Linear white space inside an already unfolded header value.
pub(crate) fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Optional white space.
pub(crate) fn sws(i: &str) -> IResult<&str, &str> {
    take_while(is_ws).parse(i)
}

/// A `token`.
pub(crate) fn token(i: &str) -> IResult<&str, &str> {
    take_while1(is_token).parse(i)
}

/// A separator character surrounded by optional white space (`SEMI`, `EQUAL`, `SLASH`, `COMMA` …).
pub(crate) fn sep(c: char) -> impl Fn(&str) -> IResult<&str, char> {
    move |i| {
        let (i, _) = sws(i)?;
        let (i, c) = char(c).parse(i)?;
        let (i, _) = sws(i)?;
        Ok((i, c))
    }
}

/// A `quoted-string`, returned with its quotes and escapes as written.
pub(crate) fn quoted_string(i: &str) -> IResult<&str, &str> {
    let bytes = i.as_bytes();
    if bytes.first() != Some(&b'"') {
        return Err(nom::Err::Error(Error::new(i, ErrorKind::Char)));
    }
    let mut pos = 1;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => {
                // quoted-pair excludes CR and LF; the byte after '\' is ASCII or we fail.
                match bytes.get(pos + 1) {
                    Some(b) if *b < 0x80 && *b != b'\r' && *b != b'\n' => pos += 2,
                    _ => return Err(nom::Err::Error(Error::new(i, ErrorKind::Escaped))),
                }
            }
            b'"' => return Ok((&i[pos + 1..], &i[..pos + 1])),
            b'\r' | b'\n' => return Err(nom::Err::Error(Error::new(i, ErrorKind::Char))),
            _ => pos += 1,
        }
    }
    Err(nom::Err::Error(Error::new(i, ErrorKind::Char)))
}

/// Removes the quotes and backslash escapes of a `quoted-string`.
pub fn unquote(s: &str) -> String {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Wraps a string in quotes, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        // CR/LF cannot be carried in a quoted-string; drop them rather than break the header.
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Splits a header value at top-level commas, ignoring commas inside quotes or angle brackets.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let bytes = value.as_bytes();
    let (mut start, mut in_quote, mut in_angle, mut i) = (0, false, false, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b',' if !in_quote && !in_angle => {
                parts.push(value[start..i].trim_matches(is_ws));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(value[start..].trim_matches(is_ws));
    parts
}

/// Parses a run of ASCII digits into a u32, failing on overflow.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `delta-seconds`, saturating at u32::MAX as RFC 3261 §20.19 allows for huge values.
pub(crate) fn parse_delta_seconds(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_string_handles_escapes() {
        assert_eq!(
            quoted_string(r#""a \"b\"" rest"#).unwrap(),
            (" rest", r#""a \"b\"""#)
        );
        assert!(quoted_string(r#""open"#).is_err());
        assert_eq!(unquote(r#""J Rosenberg \\\"""#), r#"J Rosenberg \""#);
        assert_eq!(quote("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn split_list_respects_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a,b" <sip:x;y=1,2>, c"#),
            vec![r#""a,b" <sip:x;y=1,2>"#, "c"]
        );
    }
}
