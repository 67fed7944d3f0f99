use super::*;
use crate::DocumentError;

// The example of RFC 4235 §5.2 (the first NOTIFY body), a confirmed dialog with both sides.
const RFC_EXAMPLE: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
    version="1" state="full" entity="sip:bob@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
      local-tag="1928301774" remote-tag="456887766" direction="recipient">
    <state event="replaced" code="200">confirmed</state>
    <duration>274</duration>
    <local>
      <identity display="Bob">sip:bob@example.com</identity>
      <target uri="sip:bob@pc33.example.com">
        <param pname="isfocus" pval="true"/>
      </target>
    </local>
    <remote>
      <identity display="Alice &amp; co">sip:alice@example.com</identity>
    </remote>
    <x:extension xmlns:x="urn:example:ext">ignored</x:extension>
  </dialog>
  <dialog id="zxcvbnm3" direction="initiator">
    <state>early</state>
  </dialog>
</dialog-info>"#;

#[test]
fn parses_the_rfc_example() {
    let d = DialogInfo::parse(RFC_EXAMPLE.as_bytes()).expect("valid");
    assert_eq!(
        (d.version, d.state, d.entity.as_str()),
        (1, State::Full, "sip:bob@example.com")
    );
    assert_eq!(d.dialogs.len(), 2);
    let first = &d.dialogs[0];
    assert_eq!(first.id, "as7d900as8");
    assert_eq!(first.call_id.as_deref(), Some("a84b4c76e66710"));
    assert_eq!(first.local_tag.as_deref(), Some("1928301774"));
    assert_eq!(first.remote_tag.as_deref(), Some("456887766"));
    assert_eq!(first.direction, Some(Direction::Recipient));
    assert_eq!(first.state, DialogState::Confirmed);
    assert_eq!(first.event.as_deref(), Some("replaced"));
    assert_eq!(first.code, Some(200));
    assert_eq!(first.duration, Some(274));
    let local = first.local.as_ref().expect("local");
    assert_eq!(local.identity.as_deref(), Some("sip:bob@example.com"));
    assert_eq!(local.display.as_deref(), Some("Bob"));
    assert_eq!(local.target.as_deref(), Some("sip:bob@pc33.example.com"));
    let remote = first.remote.as_ref().expect("remote");
    assert_eq!(remote.display.as_deref(), Some("Alice & co"));
    assert_eq!(remote.target, None);
    let second = &d.dialogs[1];
    assert_eq!(
        (second.state, second.direction, second.call_id.as_deref()),
        (DialogState::Early, Some(Direction::Initiator), None)
    );
}

#[test]
fn writes_and_reads_back() {
    let d = DialogInfo::parse(RFC_EXAMPLE.as_bytes()).expect("valid");
    assert_eq!(
        DialogInfo::parse(d.to_xml().as_bytes()).expect("written"),
        d
    );
    let empty = DialogInfo {
        version: u64::MAX,
        state: State::Partial,
        entity: "sip:a\"<b>@example.com".into(),
        dialogs: Vec::new(),
    };
    assert_eq!(
        DialogInfo::parse(empty.to_xml().as_bytes()).expect("written"),
        empty
    );
}

#[test]
fn a_document_without_dialogs_is_valid() {
    let d = DialogInfo::parse(
        br#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:a@b"/>"#,
    )
    .expect("valid");
    assert!(d.dialogs.is_empty());
}

fn invalid(doc: &str) -> DialogInfoError {
    DialogInfo::parse(doc.as_bytes()).expect_err(doc)
}

#[test]
fn rejects_malformed_and_invalid_documents() {
    let ns = r#"xmlns="urn:ietf:params:xml:ns:dialog-info""#;
    // Not dialog-info at all, or in the wrong namespace.
    assert!(matches!(
        invalid("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/>"),
        DialogInfoError::Document(DocumentError::Invalid(_))
    ));
    assert!(matches!(
        invalid(r#"<dialog-info version="1" state="full" entity="x"/>"#),
        DialogInfoError::Document(DocumentError::Invalid(_))
    ));
    // Not well-formed.
    assert!(matches!(
        invalid(&format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a">"#
        )),
        DialogInfoError::Document(DocumentError::Xml(_))
    ));
    assert!(DialogInfo::parse(b"\xff\xfe<").is_err());
    assert!(DialogInfo::parse(b"").is_err());
    // Required attributes and values.
    for bad in [
        format!(r#"<dialog-info {ns} state="full" entity="x"/>"#),
        format!(r#"<dialog-info {ns} version="-1" state="full" entity="x"/>"#),
        format!(r#"<dialog-info {ns} version="1" state="half" entity="x"/>"#),
        format!(r#"<dialog-info {ns} version="1" state="full"/>"#),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog><state>confirmed</state></dialog></dialog-info>"#
        ),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a"/></dialog-info>"#
        ),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a"><state>ringing</state></dialog></dialog-info>"#
        ),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a" direction="sideways"><state>early</state></dialog></dialog-info>"#
        ),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a"><state code="abc">early</state></dialog></dialog-info>"#
        ),
        format!(
            r#"<dialog-info {ns} version="1" state="full" entity="x"><dialog id="a"><state>early</state><duration>soon</duration></dialog></dialog-info>"#
        ),
    ] {
        assert!(
            matches!(
                invalid(&bad),
                DialogInfoError::Document(DocumentError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn limits_hold() {
    let dialog = r#"<dialog id="d"><state>confirmed</state></dialog>"#;
    let doc = |n: usize| {
        format!(
            r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="x">{}</dialog-info>"#,
            dialog.repeat(n)
        )
    };
    assert_eq!(
        DialogInfo::parse(doc(DEFAULT_MAX_DIALOGS).as_bytes())
            .expect("at the limit")
            .dialogs
            .len(),
        DEFAULT_MAX_DIALOGS
    );
    assert_eq!(
        DialogInfo::parse(doc(DEFAULT_MAX_DIALOGS + 1).as_bytes()),
        Err(DialogInfoError::TooManyDialogs {
            limit: DEFAULT_MAX_DIALOGS
        })
    );
    assert!(matches!(
        DialogInfo::parse_with_limits(RFC_EXAMPLE.as_bytes(), 100, 10),
        Err(DialogInfoError::Document(DocumentError::TooLarge { .. }))
    ));
    let deep = format!(
        r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="x">{}{}</dialog-info>"#,
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert!(matches!(
        DialogInfo::parse(deep.as_bytes()),
        Err(DialogInfoError::Document(DocumentError::TooDeep(_)))
    ));
}
