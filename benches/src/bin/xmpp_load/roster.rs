//! The `roster` command: mutual rosters over XMPP (subscribe, approve), for servers the tool cannot provision
//! through their storage.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use xmpp_codec::{Stanza, StreamEvent};

use crate::Error;
use crate::accounts::{DOMAIN, bare, contacts};
use crate::connect::{Target, next_event};
use crate::login::{Client, login_all};

pub(crate) async fn roster_all(
    t: &Target,
    users: usize,
    roster: usize,
    concurrency: usize,
    timeout: u64,
) -> Result<(), Error> {
    let start = Instant::now();
    let (clients, errors, first_error) = login_all(t, users, concurrency).await;
    if errors > 0 {
        return Err(format!("{errors} logins failed, first: {first_error:?}").into());
    }
    eprintln!(
        "roster: {users} logged in in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let want = contacts(0, users, roster).len();
    let complete = Arc::new(AtomicUsize::new(0));
    let debug = std::env::var_os("XMPP_LOAD_DEBUG").is_some();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let Client {
            mut rd,
            wr,
            mut parser,
            ..
        } = c.expect("all logged in");
        let wr = Arc::new(tokio::sync::Mutex::new(wr));
        let mine = contacts(i, users, roster);
        let mut out = String::new();
        for j in &mine {
            out.push_str(&format!("<presence to='u{j}@{DOMAIN}' type='subscribe'/>"));
        }
        wr.lock().await.write_all(out.as_bytes()).await?;
        let complete = complete.clone();
        tasks.push(tokio::spawn(async move {
            let mut both: HashSet<String> = HashSet::new();
            let mut buf = vec![0u8; 16 * 1024];
            let mut done = false;
            while let Ok(Ok(ev)) =
                tokio::time::timeout_at(deadline, next_event(&mut rd, &mut parser, &mut buf)).await
            {
                if debug {
                    eprintln!("u{i} <- {ev:?}");
                }
                match ev {
                    StreamEvent::Stanza(Stanza::Presence(el))
                        if el.attr("type") == Some("subscribe") =>
                    {
                        let from = bare(el.attr("from").unwrap_or_default()).to_string();
                        let reply = format!("<presence to='{from}' type='subscribed'/>");
                        if wr.lock().await.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    StreamEvent::Stanza(Stanza::Iq(el)) if el.attr("type") == Some("set") => {
                        if let Some(q) = el.child("jabber:iq:roster", "query") {
                            for item in q.elements() {
                                if let Some(j) = item.attr("jid") {
                                    if item.attr("subscription") == Some("both") {
                                        both.insert(j.to_string());
                                    } else {
                                        both.remove(j);
                                    }
                                }
                            }
                        }
                        let reply = format!(
                            "<iq type='result' id='{}'/>",
                            el.attr("id").unwrap_or_default()
                        );
                        if wr.lock().await.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                        if !done && both.len() >= want {
                            done = true;
                            complete.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    StreamEvent::Close => break,
                    _ => {}
                }
            }
            both.len()
        }));
    }
    // Wait until every roster is complete (or the deadline), then let the last replies go out and close.
    while complete.load(Ordering::Relaxed) < users && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = complete.load(Ordering::Relaxed);
    eprintln!(
        "roster: {done} of {users} rosters complete ({want} contacts, all 'both') after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for task in &tasks {
        task.abort();
    }
    if done < users {
        return Err(format!("only {done} of {users} rosters completed").into());
    }
    Ok(())
}
