use super::*;
use crate::DocumentError;

// The example of RFC 4480 §4 (abridged), with RPID activities and a data-model person.
const RPID_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
     xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
     xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"
     xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
     entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status><basic>open</basic></status>
    <contact priority="0.8">im:someone@mobile.example.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <timestamp>2005-10-27T16:49:29Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <r:activities>
      <r:on-the-phone/>
      <r:busy/>
      <r:other>brewing &amp; tasting</r:other>
    </r:activities>
    <c:homepage>http://example.com/~someone</c:homepage>
    <dm:note>Busy with a call</dm:note>
  </dm:person>
  <note>Document &lt;note&gt;</note>
</presence>"#;

#[test]
fn parses_rpid_example() {
    let p = Presence::parse(RPID_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(p.entity, "pres:someone@example.com");
    let t = &p.tuples[0];
    assert_eq!((t.id.as_str(), t.basic), ("bs35r9", Some(Basic::Open)));
    assert_eq!(t.contact.as_deref(), Some("im:someone@mobile.example.net"));
    assert_eq!(t.priority, Some(0.8));
    assert_eq!(t.note.as_deref(), Some("Don't Disturb Please!"));
    let person = p.person.as_ref().unwrap();
    assert_eq!(
        person.activities,
        vec![
            Activity::OnThePhone,
            Activity::Busy,
            Activity::Other("brewing & tasting".into())
        ]
    );
    assert_eq!(person.note.as_deref(), Some("Busy with a call"));
    assert_eq!(p.notes, vec!["Document <note>".to_owned()]);
    assert!(p.is_open());
}

#[test]
fn writes_and_reads_back() {
    let mut p = Presence::new("sip:alice@example.com");
    p.tuples.push(Tuple {
        id: "t1".into(),
        basic: Some(Basic::Closed),
        contact: Some("sip:alice@pc.example.com".into()),
        priority: Some(0.5),
        note: Some("gone <home> & out".into()),
        timestamp: None,
    });
    p.notes.push("note \"quoted\"".into());
    p.person = Some(Person {
        id: Some("p".into()),
        activities: vec![Activity::Meeting, Activity::Vacation, Activity::Away],
        note: None,
    });
    let xml = p.to_xml();
    assert_eq!(Presence::parse(xml.as_bytes()).unwrap(), p);
}

#[test]
fn rejects_bad_documents() {
    assert!(matches!(
        Presence::parse(b"<foo/>"),
        Err(DocumentError::Invalid(_))
    ));
    assert!(matches!(
        Presence::parse(b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple id='a'>"),
        Err(DocumentError::Xml(_))
    ));
    let bad_basic = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"><tuple id="a"><status><basic>maybe</basic></status></tuple></presence>"#;
    assert!(Presence::parse(bad_basic).is_err());
    assert!(matches!(
        Presence::parse_with_limit(RPID_EXAMPLE.as_bytes(), 100),
        Err(DocumentError::TooLarge { .. })
    ));
    let deep = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'>{}{}</presence>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert!(matches!(
        Presence::parse(deep.as_bytes()),
        Err(DocumentError::TooDeep(_))
    ));
    assert!(Presence::parse(b"\xff\xfe").is_err());
}
