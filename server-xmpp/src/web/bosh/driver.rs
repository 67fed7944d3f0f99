//! The task that runs one BOSH session: it owns the session's rules ([`Session`]) and moves requests in,
//! stream bytes to the XMPP stream ([`super::io::BoshIo`]), the stream's output back, answers out to the
//! waiting HTTP responses, and wakes for the session's timers. It ends when the session is over, and then the
//! stream's reads end too, which ends the connection like a dropped TCP socket.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::body::Answer;
use super::session::Session;
use super::table::{Incoming, Table};

/// Runs session `sid` to its end, then takes it out of `table`.
pub async fn drive(
    sid: String,
    mut session: Session<oneshot::Sender<Answer>>,
    mut requests: mpsc::Receiver<Incoming>,
    mut from_stream: mpsc::Receiver<String>,
    to_stream: mpsc::Sender<Vec<u8>>,
    table: Arc<Table>,
) {
    let mut to_stream = Some(to_stream);
    let mut stream_open = true;
    loop {
        for (reply, answer) in session.answers() {
            // The HTTP request may have gone (the client closed it); the answer is then lost, as on TCP.
            let _ = reply.send(answer);
        }
        if session.is_over() {
            break;
        }
        let deadline = session.next_deadline();
        tokio::select! {
            incoming = requests.recv() => match incoming {
                Some(i) => session.arrive(Instant::now(), i.request, i.reply),
                None => break,
            },
            message = from_stream.recv(), if stream_open && !session.outbox_full() => match message {
                Some(first) => {
                    // Everything already written goes out together, rather than one element per answer.
                    let mut batch = vec![first];
                    while batch.len() < 64 {
                        match from_stream.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    session.outputs(Instant::now(), batch);
                }
                None => {
                    stream_open = false;
                    session.stream_gone(Instant::now());
                }
            },
            permit = reserve(&to_stream), if session.has_inbound() => match permit {
                Some(permit) => {
                    if let Some(bytes) = session.take_inbound(Instant::now()) {
                        permit.send(bytes);
                    }
                }
                None => {
                    to_stream = None;
                    session.stream_gone(Instant::now());
                }
            },
            _ = sleep_until(deadline) => session.timeout(Instant::now()),
        }
    }
    tracing::debug!(sid, end = ?session.end(), "BOSH session over");
    table.remove(&sid);
}

/// Room for one message to the stream; `None` when the stream no longer reads.
async fn reserve(to: &Option<mpsc::Sender<Vec<u8>>>) -> Option<mpsc::OwnedPermit<Vec<u8>>> {
    match to {
        Some(to) => to.clone().reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
