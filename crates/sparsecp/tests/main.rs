//! End-to-end tests of the `sparsecp` binary, as a user runs it.

mod support;

/// `copy`: modes, stdin, directories, JSON, exit codes and error lines.
mod copy;
/// `inspect`, `dig` and `verify` output and verdicts.
mod inspect_dig_verify;
