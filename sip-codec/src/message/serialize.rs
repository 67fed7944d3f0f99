//! Writing messages in canonical form: full header names, one header per line,
//! and a Content-Length that always matches the body.

// `io::Write` on the output vector: numbers and URIs are formatted straight into it, with no string between.
use std::io::Write as _;

use super::{Message, Request, Response};
use crate::header::{HeaderName, Headers};

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in &headers.0 {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

impl Request {
    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{} {} SIP/{}.{}\r\n",
            self.method, self.uri, self.version.major, self.version.minor
        );
        write_headers(out, &self.headers, &self.body);
    }
}

impl Response {
    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "SIP/{}.{} {} {}\r\n",
            self.version.major, self.version.minor, self.status, self.reason
        );
        write_headers(out, &self.headers, &self.body);
    }
}

impl Message {
    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Request(r) => r.write_to(out),
            Message::Response(r) => r.write_to(out),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body().len());
        self.write_to(&mut out);
        out
    }
}
