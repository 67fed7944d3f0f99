//! Fuzzes SIP parsing: datagram parse, validation, typed headers, canonical round trip, and
//! stream framing over arbitrary chunkings (see `fuzz::sip::check_sip_message`). Any panic or
//! broken invariant is a finding.
//!
//! Built by cargo-fuzz (`--cfg fuzzing`) this is a libFuzzer target. Built any other way
//! (`cargo build`, `cargo test --all-targets`) it is a plain program that runs the same checks
//! once over the files named on the command line, or over the RFC 4475/5118 fixtures, so that
//! workspace builds and tests never start an endless fuzzing loop.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::sip::check_sip_message(data));

#[cfg(not(fuzzing))]
fn main() {
    let mut files: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    if files.is_empty() {
        let torture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-codec/tests/torture");
        for dir in ["rfc4475", "rfc5118"] {
            if let Ok(entries) = std::fs::read_dir(torture.join(dir)) {
                files.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    for f in &files {
        fuzz::sip::check_sip_message(&std::fs::read(f).expect("readable input"));
    }
    println!("sip_message: checked {} inputs", files.len());
}
