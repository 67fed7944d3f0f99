//! Fuzzes the translation of client stanzas into engine inputs; see
//! `fuzz::xmpp_translate::check_xmpp_translate` for the input format and the properties.
//!
//! cargo-fuzz builds with `--cfg fuzzing`. Without it this is a plain program that runs the
//! checks once over the files named on the command line, so that
//! `cargo test --workspace --all-targets` (which runs every binary) does not start libFuzzer's
//! endless loop.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::xmpp_translate::check_xmpp_translate(data);
});

#[cfg(not(fuzzing))]
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    for f in &files {
        fuzz::xmpp_translate::check_xmpp_translate(&std::fs::read(f).expect("readable input"));
    }
    println!("xmpp_translate: checked {} inputs", files.len());
}
