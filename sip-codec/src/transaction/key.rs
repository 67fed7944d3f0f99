//! Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3).

use crate::header::{HeaderName, top_branch};
use crate::message::{Request, Response};
use crate::method::Method;

/// The identity of a transaction: top Via branch, sent-by (server side) and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The branch parameter of the top Via.
    pub branch: String,
    /// The top Via sent-by (`host[:port]`), empty on the client side where the branch is ours.
    pub sent_by: String,
    /// The method; ACK matches the INVITE it acknowledges.
    pub method: Method,
}

impl TransactionKey {
    /// The server transaction key of a request, if its Via has an RFC 3261 branch.
    pub fn for_server(req: &Request) -> Option<TransactionKey> {
        let via = req.headers.via().ok()?.into_iter().next()?;
        if !via.has_rfc3261_branch() {
            return None;
        }
        let method = if req.method == Method::Ack {
            Method::Invite
        } else {
            req.method.clone()
        };
        let sent_by = match via.port {
            Some(p) => format!("{}:{p}", via.host),
            None => via.host.to_string(),
        };
        Some(TransactionKey {
            branch: via.branch()?.to_owned(),
            sent_by,
            method,
        })
    }

    /// The client transaction key of a response (branch and CSeq method). Only the top Via's branch is read:
    /// a response that names no transaction of ours is dropped whatever the rest of its Via says.
    pub fn for_client(resp: &Response) -> Option<TransactionKey> {
        let branch = top_branch(resp.headers.get(&HeaderName::Via)?)?;
        let cseq = resp.headers.cseq().ok()??;
        Some(TransactionKey {
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: cseq.method,
        })
    }

    /// The client key of a request we send.
    pub fn for_outgoing(req: &Request) -> Option<TransactionKey> {
        let via = req.headers.via().ok()?.into_iter().next()?;
        Some(TransactionKey {
            branch: via.branch()?.to_owned(),
            sent_by: String::new(),
            method: req.method.clone(),
        })
    }
}
