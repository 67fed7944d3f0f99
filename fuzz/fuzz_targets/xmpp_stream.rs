//! Feeds arbitrary bytes to the XMPP stream parser; see `fuzz::check_xmpp_stream` for the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzz::check_xmpp_stream(data));
