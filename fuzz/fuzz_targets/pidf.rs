//! Fuzzes the PIDF and watcher-info readers, and checks that what they accept writes back
//! to a document that reads the same (see `fuzz::sip::check_pidf`).
//!
//! Built by cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target; built any other way it
//! runs the checks once over the files named on the command line or two built-in documents.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::sip::check_pidf(data));

#[cfg(not(fuzzing))]
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    for f in &files {
        fuzz::sip::check_pidf(&std::fs::read(f).expect("readable input"));
    }
    if files.is_empty() {
        fuzz::sip::check_pidf(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@example.com"><tuple id="t"><status><basic>open</basic></status></tuple><dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>"#);
        fuzz::sip::check_pidf(br#"<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"><watcher-list resource="sip:a@example.com" package="presence"><watcher id="w" status="active" event="approved">sip:b@example.com</watcher></watcher-list></watcherinfo>"#);
    }
    println!("pidf: checked {} inputs", files.len().max(2));
}
