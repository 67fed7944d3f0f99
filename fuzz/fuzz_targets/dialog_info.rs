//! Fuzzes the dialog-info reader (RFC 4235), and checks that what it accepts writes back to a
//! document that reads the same (see `fuzz::sip::check_dialog_info`).
//!
//! Built by cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target; built any other way it
//! runs the checks once over the files named on the command line or one built-in document.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::sip::check_dialog_info(data);
});

#[cfg(not(fuzzing))]
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    for f in &files {
        let _ = fuzz::sip::check_dialog_info(&std::fs::read(f).expect("readable input"));
    }
    if files.is_empty() {
        fuzz::sip::check_dialog_info(br#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@example.com"><dialog id="d" call-id="c" direction="initiator"><state code="200">confirmed</state></dialog></dialog-info>"#)
            .expect("the built-in document is valid");
    }
    println!("dialog_info: checked {} inputs", files.len().max(1));
}
