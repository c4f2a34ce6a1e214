//! The rgunicorn binary: parses settings, starts logging, runs the master; the only place that
//! turns an Error into a message and an exit code.
fn main() {}
