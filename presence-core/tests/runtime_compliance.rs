//! Compliance archiving through the runtime, with an in-memory sink that fails while told to: in `required` mode
//! a message whose record cannot be written goes nowhere and its sender gets a `wait` error; in `best_effort`
//! mode it is delivered and the loss is counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presence_core::compliance::Record;
use presence_core::compose::EndpointPresence;
use presence_core::feature::Push;
use presence_core::message::{Message, MessageKind};
use presence_core::runtime::{
    self, Compliance, ComplianceError, ComplianceHook, ComplianceMode, Handle, Hooks, Runtime,
    RuntimeConfig, SessionReceiver, ToSession,
};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza, StanzaError};
use presence_core::store::{Account, AccountStore, MemoryStore, OfflineStore};
use presence_core::{BareJid, Engine, EngineConfig, Input, Jid, SessionId};

#[derive(Default)]
struct Sink {
    failing: AtomicBool,
    written: Mutex<Vec<Record>>,
}

impl Compliance for Sink {
    fn write(&self, records: &[Record]) -> Result<(), ComplianceError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ComplianceError::Backend("injected fault".into()));
        }
        self.written.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
}

impl Sink {
    fn bodies(&self) -> Vec<String> {
        self.written
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }
}

struct Rig {
    store: Arc<MemoryStore>,
    sink: Arc<Sink>,
    runtime: Runtime,
    hub: Handle,
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn rig(mode: ComplianceMode) -> Rig {
    let store = Arc::new(MemoryStore::new());
    for u in ["alice@example.com", "bob@example.com"] {
        store
            .put_account(&Account {
                jid: jid(u),
                credentials: vec![],
                digest: vec![],
            })
            .unwrap();
    }
    let sink = Arc::new(Sink::default());
    let engine = Engine::new(EngineConfig {
        compliance: true,
        ..EngineConfig::for_domain("example.com")
    });
    let hooks = Hooks {
        compliance: Some(ComplianceHook {
            sink: sink.clone(),
            mode,
        }),
        ..Hooks::default()
    };
    let runtime = runtime::spawn_with(engine, store.clone(), RuntimeConfig::default(), hooks)
        .expect("engine thread starts");
    let hub = runtime.handle();
    Rig {
        store,
        sink,
        runtime,
        hub,
    }
}

async fn next(rx: &mut SessionReceiver) -> ToSession {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the runtime answers within 5 s")
        .expect("the channel is open")
}

/// Skips presence and pushes until the next message, error or flush.
async fn significant(rx: &mut SessionReceiver) -> ToSession {
    loop {
        match next(rx).await {
            ToSession::Stanza(Stanza::Presence { .. } | Stanza::Push(Push::Roster(_))) => continue,
            other => return other,
        }
    }
}

async fn online(hub: &Handle, user: &str) -> (SessionId, SessionReceiver) {
    let session = hub.new_session();
    let (sink, mut rx) = runtime::session_channel(64, 1 << 20);
    hub.attach(session, sink).unwrap();
    hub.submit(Input::OpenSession {
        session,
        user: jid(user),
        resource: Some("r".into()),
    })
    .unwrap();
    assert!(matches!(next(&mut rx).await, ToSession::Bound(_)));
    hub.submit(Input::Presence {
        session,
        to: None,
        presence: Some(EndpointPresence::default()),
    })
    .unwrap();
    (session, rx)
}

fn say(session: SessionId, id: &str, body: &str) -> Input {
    Input::Message {
        session,
        to: Jid::Bare(jid("bob@example.com")),
        message: Message {
            id: Some(id.into()),
            kind: MessageKind::Chat,
            body: Some(body.into()),
            ..Message::default()
        },
    }
}

fn is_not_stored(e: &StanzaError, id: &str) -> bool {
    e.condition == ErrorCondition::InternalServerError
        && matches!(&e.about, ErrorAbout::Message { id: Some(i), .. } if i == id)
}

async fn message_id(rx: &mut SessionReceiver) -> String {
    match significant(rx).await {
        ToSession::Stanza(Stanza::Message { message, .. }) => message.id.unwrap_or_default(),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn required_a_failed_write_bounces_the_message_and_the_recipient_gets_nothing() {
    let rig = rig(ComplianceMode::Required);
    let (alice, mut arx) = online(&rig.hub, "alice@example.com").await;
    let (_bob, mut brx) = online(&rig.hub, "bob@example.com").await;
    rig.sink.failing.store(true, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(say(alice, "m1", "not archived"), alice, 1)
        .unwrap();
    match significant(&mut arx).await {
        ToSession::Stanza(Stanza::Error(e)) => assert!(is_not_stored(&e, "m1"), "{e:?}"),
        other => panic!("expected the wait error, got {other:?}"),
    }
    // What a SIP MESSAGE's final response is made from: not durable, so a 500.
    assert_eq!(
        significant(&mut arx).await,
        ToSession::Flushed {
            token: 1,
            durable: false
        }
    );

    // The archive is back: the next message is archived and delivered, and it is the first bob sees.
    rig.sink.failing.store(false, Ordering::SeqCst);
    rig.hub.submit(say(alice, "m2", "archived")).unwrap();
    assert_eq!(message_id(&mut brx).await, "m2");
    assert_eq!(rig.sink.bodies(), vec!["archived".to_owned()]);
    let text = rig.hub.metrics().encode();
    assert!(
        text.contains("presenced_compliance_failures_total{reason=\"write\"} 1"),
        "{text}"
    );
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn required_a_failed_write_holds_nothing_offline() {
    let rig = rig(ComplianceMode::Required);
    let (alice, mut arx) = online(&rig.hub, "alice@example.com").await;
    rig.sink.failing.store(true, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(say(alice, "m1", "for later"), alice, 1)
        .unwrap();
    match significant(&mut arx).await {
        ToSession::Stanza(Stanza::Error(e)) => assert!(is_not_stored(&e, "m1"), "{e:?}"),
        other => panic!("expected the wait error, got {other:?}"),
    }
    assert_eq!(
        significant(&mut arx).await,
        ToSession::Flushed {
            token: 1,
            durable: false
        }
    );
    assert!(
        rig.store
            .offline(&jid("bob@example.com"))
            .unwrap()
            .is_empty()
    );

    rig.sink.failing.store(false, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(say(alice, "m2", "for later"), alice, 2)
        .unwrap();
    assert_eq!(
        significant(&mut arx).await,
        ToSession::Flushed {
            token: 2,
            durable: true
        }
    );
    assert_eq!(rig.store.offline(&jid("bob@example.com")).unwrap().len(), 1);
    assert_eq!(rig.sink.bodies(), vec!["for later".to_owned()]);
    // Bob signs in: he gets the one archived message only.
    let (_bob, mut brx) = online(&rig.hub, "bob@example.com").await;
    assert_eq!(message_id(&mut brx).await, "m2");
    rig.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn best_effort_a_failed_write_still_delivers_and_is_counted() {
    let rig = rig(ComplianceMode::BestEffort);
    let (alice, mut arx) = online(&rig.hub, "alice@example.com").await;
    let (_bob, mut brx) = online(&rig.hub, "bob@example.com").await;
    rig.sink.failing.store(true, Ordering::SeqCst);
    rig.hub
        .submit_and_flush(say(alice, "m1", "lost to the archive"), alice, 1)
        .unwrap();
    assert_eq!(message_id(&mut brx).await, "m1");
    assert_eq!(
        significant(&mut arx).await,
        ToSession::Flushed {
            token: 1,
            durable: true
        },
        "the sender hears of no failure"
    );
    // The writer thread reports the loss.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = rig.hub.metrics().encode();
        if text.contains("presenced_compliance_failures_total{reason=\"write\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    rig.sink.failing.store(false, Ordering::SeqCst);
    rig.hub.submit(say(alice, "m2", "archived")).unwrap();
    assert_eq!(message_id(&mut brx).await, "m2");
    // Shutdown lets the writer finish what is queued.
    rig.runtime.shutdown().await;
    assert_eq!(rig.sink.bodies(), vec!["archived".to_owned()]);
}
