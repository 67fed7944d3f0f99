//! Fuzzes the PIDF and watcher-info readers, and checks that what they accept writes back
//! to a document that reads the same.
//!
//! Built by cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target; built any other way it
//! runs the checks once over the files named on the command line or two built-in documents.
#![cfg_attr(fuzzing, no_main)]

use sip_codec::pidf::Presence;
use sip_codec::winfo::WatcherInfo;

fn check(data: &[u8]) {
    if let Ok(p) = Presence::parse(data) {
        let xml = p.to_xml();
        let again = Presence::parse(xml.as_bytes()).expect("written PIDF parses");
        assert_eq!(again.to_xml(), xml);
    }
    if let Ok(w) = WatcherInfo::parse(data) {
        let xml = w.to_xml();
        let again = WatcherInfo::parse(xml.as_bytes()).expect("written winfo parses");
        assert_eq!(again, w);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));

#[cfg(not(fuzzing))]
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    for f in &files {
        check(&std::fs::read(f).expect("readable input"));
    }
    if files.is_empty() {
        check(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@example.com"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>"#);
        check(br#"<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"><watcher-list resource="sip:a@example.com" package="presence"><watcher id="w" status="active" event="approved">sip:b@example.com</watcher></watcher-list></watcherinfo>"#);
    }
    println!("pidf: checked {} inputs", files.len().max(2));
}
