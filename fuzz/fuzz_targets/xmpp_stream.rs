//! Feeds arbitrary bytes to the XMPP stream parser; see `fuzz::check_xmpp_stream` for the properties.
//!
//! cargo-fuzz builds with `--cfg fuzzing`. Without it this is an empty program, so that
//! `cargo test --workspace --all-targets` (which runs every binary) does not start libFuzzer's
//! endless loop.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::check_xmpp_stream(data);
});

#[cfg(not(fuzzing))]
fn main() {
    eprintln!(
        "build with `cargo fuzz run xmpp_stream --fuzz-dir fuzz` to fuzz; see fuzz/README.md"
    );
}
