//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route (RFC 3261 §20.10, §25.1).

use std::fmt;

use nom::{IResult, Parser, character::complete::char};

use super::params::{Params, end, params};
use crate::grammar::{is_ws, quote, quoted_string, sws, token, unquote};
use crate::uri::Uri;

/// An address with optional display name and header parameters (`tag`, `expires`, `q` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display_name: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters after the address.
    pub params: Params,
}

/// The value of a Contact header: `*` (remove all bindings) or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *`
    Star,
    /// One or more addresses.
    List(Vec<NameAddr>),
}

impl NameAddr {
    /// An address without display name or parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::default(),
        }
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The `expires` parameter (Contact), saturating on overflow.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(crate::grammar::parse_delta_seconds)
    }

    /// The `q` parameter (Contact) in thousandths (`q=0.5` → 500).
    pub fn q(&self) -> Option<u16> {
        let v = self.params.get("q").flatten()?;
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole: u16 = match int {
            "0" => 0,
            "1" if frac.bytes().all(|b| b == b'0') => 1,
            _ => return None,
        };
        let mut thousandths: u16 = 0;
        for (k, b) in frac.bytes().enumerate() {
            thousandths += u16::from(b - b'0') * [100, 10, 1][k];
        }
        Some(whole * 1000 + thousandths)
    }
}

fn fail(i: &str) -> nom::Err<nom::error::Error<&str>> {
    nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify))
}

/// `LAQUOT addr-spec RAQUOT`
fn angle_uri(i: &str) -> IResult<&str, Uri> {
    let (i, _) = char('<').parse(i)?;
    let close = i.find('>').ok_or_else(|| fail(i))?;
    let uri = Uri::parse(&i[..close]).map_err(|_| fail(i))?;
    Ok((&i[close + 1..], uri))
}

/// `( name-addr / addr-spec ) *( SEMI generic-param )`
fn name_addr(i: &str) -> IResult<&str, NameAddr> {
    let (i, _) = sws(i)?;
    let (i, display_name, uri) = if i.starts_with('"') {
        let (i, q) = quoted_string(i)?;
        let (i, _) = sws(i)?;
        let (i, uri) = angle_uri(i)?;
        (i, Some(unquote(q)), uri)
    } else if i.starts_with('<') {
        let (i, uri) = angle_uri(i)?;
        (i, None, uri)
    } else if let Some((rest, name)) = token_display_name(i) {
        let (rest, uri) = angle_uri(rest)?;
        (rest, Some(name), uri)
    } else {
        // addr-spec: a URI containing ';', ',' or '?' must be in angle brackets, so it ends here.
        let end = i
            .find(|c: char| c == ';' || c == ',' || is_ws(c))
            .unwrap_or(i.len());
        let uri = Uri::parse(&i[..end]).map_err(|_| fail(i))?;
        if uri.as_sip().is_some_and(|u| !u.headers.is_empty()) {
            return Err(fail(i));
        }
        (&i[end..], None, uri)
    };
    let (i, params) = params(i)?;
    Ok((
        i,
        NameAddr {
            display_name,
            uri,
            params,
        },
    ))
}

/// `*(token LWS)` followed by `<`: returns the rest starting at `<` and the display name.
fn token_display_name(i: &str) -> Option<(&str, String)> {
    let mut rest = i;
    let mut words: Vec<&str> = Vec::new();
    loop {
        let (r, t) = token(rest).ok()?;
        words.push(t);
        let (r, _) = sws(r).ok()?;
        if r.starts_with('<') {
            return Some((r, words.join(" ")));
        }
        if r.len() == rest.len() - t.len() {
            // A token followed by neither white space nor '<' cannot be a display name.
            return None;
        }
        rest = r;
    }
}

/// Parses a single name-addr or addr-spec value (From, To, one Contact/Route element).
pub fn parse_name_addr(s: &str) -> Result<NameAddr, &'static str> {
    let (i, v) = name_addr(s).map_err(|_| "malformed address")?;
    end(i).map_err(|_| "unexpected characters after address")?;
    Ok(v)
}

/// Parses a Contact header value (`*` or a list).
pub fn parse_contacts(values: &[&str]) -> Result<Contacts, &'static str> {
    let mut list = Vec::new();
    for v in values {
        for item in crate::grammar::split_list(v) {
            if item == "*" {
                if values.len() == 1 && list.is_empty() && !v.contains(',') {
                    return Ok(Contacts::Star);
                }
                return Err("'*' must be the only Contact value");
            }
            list.push(parse_name_addr(item)?);
        }
    }
    Ok(Contacts::List(list))
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl fmt::Display for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contacts::Star => f.write_str("*"),
            Contacts::List(l) => {
                for (k, a) in l.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = parse_name_addr(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(a.tag(), Some("98asjd8"));
        let a =
            parse_name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.tag(), Some("1918181833n"));
        let a = parse_name_addr("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display_name.as_deref(), Some("caller"));
        assert_eq!(
            a.to_string(),
            r#""caller" <sip:caller@example.com>;tag=323"#
        );
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(parse_name_addr("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(parse_name_addr(r#""Mr. J. User <sip:j.user@example.com>"#).is_err());
        assert!(parse_name_addr(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        assert!(parse_name_addr("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
    }

    #[test]
    fn contact_params_and_star() {
        let c = parse_contacts(&[r#"<sip:a@b>;expires=3600;q=0.7, "X" <sip:c@d>"#]).unwrap();
        let Contacts::List(l) = c else { panic!() };
        assert_eq!(l[0].expires(), Some(3600));
        assert_eq!(l[0].q(), Some(700));
        assert_eq!(parse_contacts(&["*"]).unwrap(), Contacts::Star);
        assert!(parse_contacts(&["*, <sip:a@b>"]).is_err());
    }
}
