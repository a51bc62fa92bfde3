//! End-to-end tests of the `sparsecp` binary, as a user runs it.

mod support;

/// Bad command lines and paths: one error line naming the path, exit 3, nothing changed.
mod bad_input;
/// `copy`: modes, stdin, directories, JSON, exit codes and error lines.
mod copy;
/// 10^5 extents: copy, verify, dig and inspect correct and in bounded memory.
mod fragmented;
/// `inspect`, `dig` and `verify` output and verdicts.
mod inspect_dig_verify;
/// SIGINT, SIGTERM and SIGKILL mid-copy and mid-dig; the next run removes stale temporaries.
mod killed;
