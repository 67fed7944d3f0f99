//! Fuzz targets live in `fuzz_targets/`; see the README for how to run them.
