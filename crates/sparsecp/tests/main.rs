//! End-to-end tests of the `sparsecp` binary, as a user runs it.

mod support;

/// Bad command lines and paths: one error line naming the path, exit 3, nothing changed.
mod bad_input;
/// Block-device destinations: holes zeroed or skipped, busy/mounted/small devices refused, verify.
mod blockdev;
/// `copy`: modes, stdin, directories, JSON, exit codes and error lines.
mod copy;
/// `inspect`, `dig` and `verify` output and verdicts.
mod inspect_dig_verify;
/// SIGINT, SIGTERM and SIGKILL mid-copy and mid-dig; the next run removes stale temporaries.
mod killed;
