//! End-to-end tests of the `sparsecp` binary, as a user runs it.

mod support;

/// Bad command lines and paths: one error line naming the path, exit 3, nothing changed.
mod bad_input;
/// Block-device destinations: holes zeroed or skipped, busy/mounted/small devices refused, verify.
mod blockdev;
/// bmap files: interop with bmaptool both ways, checksum and size faults.
mod bmap;
/// `copy`: modes, stdin, directories, JSON, exit codes and error lines.
mod copy;
/// 10^5 extents: copy, verify, dig and inspect correct and in bounded memory.
mod fragmented;
/// `copy --in-place`: the atomic copy refused for room, in place instead; ENOSPC and SIGKILL in place.
mod in_place;
/// `inspect`, `dig` and `verify` output and verdicts.
mod inspect_dig_verify;
/// SIGINT, SIGTERM and SIGKILL mid-copy and mid-dig; the next run removes stale temporaries.
mod killed;
/// Live images (files backing loop devices): copy and dig refuse them, by any path, unless overridden.
mod live;
