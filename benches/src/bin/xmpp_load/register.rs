//! The `register` command: in-band registration (XEP-0077) of every account, for servers the tool cannot provision
//! through their storage.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use xmpp_codec::{Stanza, StreamEvent, StreamParser};

use crate::Error;
use crate::accounts::PASSWORD;
use crate::connect::{Target, connect_tls, next_event};
use crate::login::LOGIN_TIMEOUT;

/// In-band registration of one account; an existing account counts as registered.
pub(crate) async fn register(t: &Target, user: usize) -> Result<(), Error> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut parser = StreamParser::new();
    let (mut s, _) = connect_tls(t, t.addr, &mut parser, &mut buf).await?;
    s.write_all(
        format!(
            "<iq type='set' id='reg'><query xmlns='jabber:iq:register'>\
<username>u{user}</username><password>{PASSWORD}</password></query></iq>"
        )
        .as_bytes(),
    )
    .await?;
    loop {
        if let StreamEvent::Stanza(Stanza::Iq(el)) =
            next_event(&mut s, &mut parser, &mut buf).await?
            && el.attr("id") == Some("reg")
        {
            let conflict = el
                .elements()
                .find(|e| e.name == "error")
                .is_some_and(|e| e.elements().any(|c| c.name == "conflict"));
            let _ = s.write_all(b"</stream:stream>").await;
            return if el.attr("type") == Some("result") || conflict {
                Ok(())
            } else {
                Err(format!("registration of u{user} failed: {el:?}").into())
            };
        }
    }
}

pub(crate) async fn register_all(
    t: &Target,
    users: usize,
    concurrency: usize,
) -> Result<(), Error> {
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for user in 0..users {
        let (sem, t) = (sem.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            tokio::time::timeout(LOGIN_TIMEOUT, register(&t, user))
                .await
                .map_err(|_| Error::from("registration timed out"))?
        }));
    }
    let mut errors = 0;
    for task in tasks {
        if let Err(e) = task.await? {
            if errors == 0 {
                eprintln!("first registration error: {e}");
            }
            errors += 1;
        }
    }
    eprintln!(
        "registered {} of {users} users in {:.1} s",
        users - errors,
        start.elapsed().as_secs_f64()
    );
    if errors > 0 {
        return Err(format!("{errors} registrations failed").into());
    }
    Ok(())
}
