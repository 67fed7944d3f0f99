//! Running the real `presenced` binary from the integration tests.

#![allow(dead_code)] // each test crate uses its own subset

pub mod postgres;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A password unlikely to occur in the database by chance.
pub const PASSWORD: &str = "correct-horse-battery-staple-7731";

/// Runs `presenced` in `dir` with `args`, feeding `stdin`.
pub fn presenced(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_presenced"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn presenced");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("presenced finishes")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure with exactly one line on stderr mentioning `needle`.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "should fail; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

/// A temporary directory holding `presenced.toml` with `config`.
pub fn setup(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("presenced.toml"), config).expect("write config");
    dir
}

/// `presenced --config presenced.toml <args>` in `dir`.
pub fn with_config(dir: &Path, args: &[&str], stdin: &str) -> Output {
    presenced(
        dir,
        &[&["--config", "presenced.toml"][..], args].concat(),
        stdin,
    )
}
