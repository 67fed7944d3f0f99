//! Fuzzes the PIDF and watcher-info readers, and checks that what they accept writes back
//! to a document that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_codec::pidf::Presence;
use sip_codec::winfo::WatcherInfo;

fuzz_target!(|data: &[u8]| {
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
});
