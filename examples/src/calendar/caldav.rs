//! The CalDAV connector (RFC 4791): one `calendar-query` REPORT per user and poll, asking for the VEVENTs whose
//! time range covers the moment polled, expanded into UTC instances (§9.6.5), and reading them as
//! [`CalendarEvent`]s.
//!
//! Why a time-range query and not `free-busy-query`: not every server answers free-busy (Radicale 3.1 does
//! not), and free-busy has no summary or categories to tell an out-of-office day from a meeting. The server
//! applies recurrence rules and time zones when it matches the range, so an event it returns is current; the
//! instance's UTC end, when it gives one, only lets the poller end the event on time if a later read fails.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use icalendar::{CalendarComponent, CalendarDateTime, Component, DatePerhapsTime, EventLike};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use presence_core::BareJid;
use presence_core::runtime::calendar::{
    BusyStatus, CalendarConnector, CalendarError, CalendarEvent, EventStatus,
};
use quick_xml::events::Event as Xml;
use tokio::net::TcpStream;

/// The largest REPORT answer read; a calendar with more current events than fit is a misconfiguration.
const MAX_ANSWER: usize = 1024 * 1024;

/// Characters of a JID local part left as they are in the URL path: RFC 3986 unreserved ones.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Reads users' calendars from a CalDAV server with one service account.
pub struct CalDav {
    /// The calendar URL with `{user}` where the local part goes.
    url: String,
    /// `Basic` credentials of the service account, marked sensitive so no header dump shows them.
    authorization: HeaderValue,
    /// Server certificates of `https://` calendars are checked against the Mozilla roots.
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for CalDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalDav")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl CalDav {
    /// A connector for `url` (with `{user}`), authenticating as `username`/`password`.
    pub fn new(url: &str, username: &str, password: &str) -> Self {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        CalDav {
            url: url.to_owned(),
            authorization,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// The calendar collection of `user`.
    pub fn calendar_url(&self, user: &BareJid) -> Result<Uri, CalendarError> {
        let local = user.local().unwrap_or_default();
        let url = self
            .url
            .replace("{user}", &utf8_percent_encode(local, PATH_KEEP).to_string());
        url.parse()
            .map_err(|e| CalendarError::Malformed(format!("calendar URL {url:?}: {e}")))
    }

    async fn report(&self, url: &Uri, body: String) -> Result<(StatusCode, Bytes), CalendarError> {
        let https = url.scheme_str() == Some("https");
        let host = url
            .host()
            .ok_or_else(|| CalendarError::Malformed(format!("calendar URL {url} has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = url.authority().map_or(host, |a| a.as_str());
        let request = Request::builder()
            .method(Method::from_bytes(b"REPORT").expect("a valid method"))
            .uri(url.path_and_query().map_or("/", |p| p.as_str()))
            .header(HOST, authority)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/xml; charset=utf-8")
            .header("Depth", "1")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CalendarError::Malformed(format!("request: {e}")))?;
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| CalendarError::Unreachable(format!("{host}:{port}: {e}")))?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| CalendarError::Malformed(format!("host {host}: {e}")))?;
            let tls =
                self.tls.connect(name, tcp).await.map_err(|e| {
                    CalendarError::Unreachable(format!("TLS with {host}:{port}: {e}"))
                })?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
    }
}

/// One request on a fresh HTTP/1.1 connection, the answer's body read up to [`MAX_ANSWER`].
async fn exchange<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), CalendarError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let broken = |e: hyper::Error| CalendarError::Unreachable(format!("HTTP: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(broken)?;
    let driver = tokio::spawn(connection);
    let answer = async {
        let response = sender.send_request(request).await.map_err(broken)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| CalendarError::Malformed(format!("answer body: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    answer
}

impl CalendarConnector for CalDav {
    async fn current_events(
        &self,
        user: &BareJid,
        at: SystemTime,
    ) -> Result<Vec<CalendarEvent>, CalendarError> {
        let url = self.calendar_url(user)?;
        let (status, body) = self.report(&url, query(at)).await?;
        match status {
            StatusCode::MULTI_STATUS | StatusCode::OK => events_at(&body, at),
            // No calendar collection for this user: nothing booked.
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            other => Err(CalendarError::Refused {
                status: other.as_u16(),
                detail: other.canonical_reason().unwrap_or("").to_owned(),
            }),
        }
    }
}

/// The REPORT body: VEVENTs overlapping the second starting at `at`, recurrences expanded to UTC instances.
pub fn query(at: SystemTime) -> String {
    let start: DateTime<Utc> = at.into();
    let end = start + chrono::Duration::seconds(1);
    let (s, e) = (start.format("%Y%m%dT%H%M%SZ"), end.format("%Y%m%dT%H%M%SZ"));
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><C:calendar-data><C:expand start="{s}" end="{e}"/></C:calendar-data></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT"><C:time-range start="{s}" end="{e}"/></C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>
"#
    )
}

/// The events in a `multistatus` answer, as going on at `at`.
pub fn events_at(multistatus: &[u8], at: SystemTime) -> Result<Vec<CalendarEvent>, CalendarError> {
    let mut events = Vec::new();
    for data in calendar_data(multistatus)? {
        let calendar: icalendar::Calendar = data
            .parse()
            .map_err(|e: String| CalendarError::Malformed(first_line(&e)))?;
        for component in &calendar.components {
            if let CalendarComponent::Event(event) = component
                && let Some(e) = event_at(event, at)
            {
                events.push(e);
            }
        }
    }
    Ok(events)
}

/// The text of every `calendar-data` element (whatever its namespace prefix).
fn calendar_data(multistatus: &[u8]) -> Result<Vec<String>, CalendarError> {
    let bad = |e: &dyn std::fmt::Display| CalendarError::Malformed(format!("multistatus: {e}"));
    let mut reader = quick_xml::Reader::from_reader(multistatus);
    let mut found = Vec::new();
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Xml::Start(start) if start.local_name().as_ref() == b"calendar-data" => {
                let raw = reader.read_text(start.name()).map_err(|e| bad(&e))?;
                let raw = raw.trim();
                let text = match raw
                    .strip_prefix("<![CDATA[")
                    .and_then(|r| r.strip_suffix("]]>"))
                {
                    Some(cdata) => cdata.to_owned(),
                    None => quick_xml::escape::unescape(raw)
                        .map_err(|e| bad(&e))?
                        .into_owned(),
                };
                found.push(text);
            }
            Xml::Eof => return Ok(found),
            _ => {}
        }
    }
}

/// One VEVENT as a [`CalendarEvent`] going on at `at`, or `None` when it plainly is not (a server that
/// ignored the time range, given an instance with UTC times).
fn event_at(event: &icalendar::Event, at: SystemTime) -> Option<CalendarEvent> {
    let start = event.get_start();
    let end = event.get_end();
    let all_day = matches!(start, Some(DatePerhapsTime::Date(_)));
    let recurring =
        event.property_value("RRULE").is_some() || event.property_value("RDATE").is_some();
    let (start_utc, end_utc) = (start.as_ref().and_then(utc), end.as_ref().and_then(utc));
    // An unexpanded recurring master's own times are its first instance, not the current one: trust the server.
    if !recurring
        && let (Some(s), Some(e)) = (start_utc, end_utc)
        && !(s <= at && at < e)
    {
        return None;
    }
    let status = match event
        .property_value("STATUS")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("TENTATIVE") => EventStatus::Tentative,
        Some("CANCELLED") => EventStatus::Cancelled,
        _ => EventStatus::Confirmed,
    };
    let busy_status = event
        .property_value("X-MICROSOFT-CDO-BUSYSTATUS")
        .and_then(|v| match v.trim().to_ascii_uppercase().as_str() {
            "FREE" => Some(BusyStatus::Free),
            "TENTATIVE" => Some(BusyStatus::Tentative),
            "BUSY" => Some(BusyStatus::Busy),
            "OOF" => Some(BusyStatus::OutOfOffice),
            _ => None,
        });
    Some(CalendarEvent {
        summary: event.get_summary().unwrap_or_default().to_owned(),
        categories: event.get_categories().unwrap_or_default(),
        all_day,
        transparent: event
            .property_value("TRANSP")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("TRANSPARENT")),
        status,
        busy_status,
        ends: end_utc.filter(|e| *e > at),
    })
}

/// A `DATE-TIME` in UTC as a time; floating times, local times with a zone and dates have no absolute
/// instant without the user's time zone, so the poller keeps such an event until the server stops returning it.
fn utc(t: &DatePerhapsTime) -> Option<SystemTime> {
    match t {
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => Some((*t).into()),
        _ => None,
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::compose::CalendarState;
    use presence_core::runtime::calendar::state_at;
    use std::time::Duration;

    fn at(rfc3339: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
            .into()
    }

    fn answer(events: &[&str]) -> Vec<u8> {
        let responses: String = events
            .iter()
            .map(|e| {
                let ics = format!(
                    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{e}END:VCALENDAR\r\n"
                );
                format!(
                    "<D:response><D:href>/alice/calendar/x.ics</D:href><D:propstat><D:prop>\
                     <C:calendar-data>{}</C:calendar-data></D:prop>\
                     <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
                    quick_xml::escape::escape(ics.as_str())
                )
            })
            .collect();
        format!(
            r#"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">{responses}</D:multistatus>"#
        )
        .into_bytes()
    }

    const MEETING: &str = "BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261204T090000Z\r\nDTSTART:20261204T100000Z\r\n\
                           DTEND:20261204T110000Z\r\nSUMMARY:Design review & lunch\r\nEND:VEVENT\r\n";

    #[test]
    fn a_meeting_in_a_multistatus_answer_is_current_until_its_utc_end() {
        let now = at("2026-12-04T10:30:00Z");
        let events = events_at(&answer(&[MEETING]), now).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].summary, "Design review & lunch");
        assert_eq!(events[0].ends, Some(at("2026-12-04T11:00:00Z")));
        assert_eq!(state_at(&events, now), CalendarState::Busy);
        assert_eq!(
            state_at(&events, at("2026-12-04T11:00:00Z")),
            CalendarState::Free
        );
    }

    #[test]
    fn an_event_plainly_outside_the_moment_is_dropped_even_if_a_server_returns_it() {
        let events = events_at(&answer(&[MEETING]), at("2026-12-04T12:00:00Z")).unwrap();
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn an_all_day_out_of_office_event_and_exchange_properties() {
        let ooo = "BEGIN:VEVENT\r\nUID:2\r\nDTSTAMP:20261204T090000Z\r\nDTSTART;VALUE=DATE:20261204\r\n\
                   DTEND;VALUE=DATE:20261205\r\nSUMMARY:Holiday\r\nCATEGORIES:Vacation\r\n\
                   TRANSP:TRANSPARENT\r\nEND:VEVENT\r\n";
        let tentative = "BEGIN:VEVENT\r\nUID:3\r\nDTSTAMP:20261204T090000Z\r\nDTSTART:20261204T100000Z\r\n\
                         DTEND:20261204T110000Z\r\nSUMMARY:Maybe\r\n\
                         X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\nEND:VEVENT\r\n";
        let now = at("2026-12-04T10:30:00Z");
        let events = events_at(&answer(&[ooo, tentative]), now).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events[0].all_day && events[0].transparent);
        assert_eq!(events[0].categories, vec!["Vacation".to_owned()]);
        // A date has no instant without the user's zone: kept until the server stops returning it.
        assert_eq!(events[0].ends, None);
        assert_eq!(events[1].busy_status, Some(BusyStatus::Tentative));
        assert_eq!(state_at(&events, now), CalendarState::OutOfOffice);
        assert_eq!(state_at(&events[1..], now), CalendarState::Tentative);
    }

    #[test]
    fn an_unexpanded_recurring_master_is_trusted_to_the_server() {
        let weekly = "BEGIN:VEVENT\r\nUID:4\r\nDTSTAMP:20261101T090000Z\r\nDTSTART:20261106T100000Z\r\n\
                      DTEND:20261106T110000Z\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n";
        let now = at("2026-12-04T10:30:00Z");
        let events = events_at(&answer(&[weekly]), now).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].ends, None,
            "the master's end is a past instance's"
        );
        assert_eq!(
            state_at(&events, now + Duration::from_secs(3600)),
            CalendarState::Busy
        );
    }

    #[test]
    fn an_empty_answer_has_no_events_and_garbage_is_an_error() {
        assert!(
            events_at(&answer(&[]), SystemTime::now())
                .unwrap()
                .is_empty()
        );
        let broken = answer(&["BEGIN:VEVENT\r\nDTSTART:20261204T100000Z\r\n"]);
        assert!(events_at(&broken, SystemTime::now()).is_err());
    }

    #[test]
    fn the_query_asks_for_the_second_polled_and_the_url_names_the_local_part() {
        let q = query(at("2026-12-04T10:30:00Z"));
        assert!(
            q.contains(r#"<C:time-range start="20261204T103000Z" end="20261204T103001Z"/>"#),
            "{q}"
        );
        assert!(
            q.contains(r#"<C:expand start="20261204T103000Z" end="20261204T103001Z"/>"#),
            "{q}"
        );
        let dav = CalDav::new("http://127.0.0.1:5232/{user}/calendar/", "svc", "secret");
        let user = BareJid::new("a.b+c#d@example.com").unwrap();
        assert_eq!(
            dav.calendar_url(&user).unwrap().to_string(),
            "http://127.0.0.1:5232/a.b%2Bc%23d/calendar/"
        );
        assert!(!format!("{dav:?}").contains("secret"));
    }
}
