//! Integration tests of the harness: the installer scenarios of issue #3
//! replayed on loop-mounted COS_STATE partitions (root only; they skip
//! with a printed reason otherwise), with the tables snapshotted.

mod support;

/// Each copier on a small image: holes kept or filled, odd paths quoted.
mod copiers;
/// Full-scale Harvester installs on ext4 (15 GiB and 8 GiB): the tables,
/// the gate per copier, and copy-engine's promises on the real image.
mod install_ext4;
/// A SIGKILLed run's mounts and loop devices are released by the next.
mod killed_run;
/// The same scenarios on xfs and btrfs COS_STATE, at scale 0.1.
mod other_fs;
/// Scenario files load, and scaling keeps every filesystem valid.
mod scenarios;
/// Full-scale 8 GiB upgrade on ext4: dense passive runs out, sparse fits,
/// dig-passive saves both.
mod upgrade_ext4;
/// The v1.8 upgrade under every strategy, and external preflight commands.
mod upgrade_v18;
/// The gate's rules on made-up runs: tolerance, content, labels, fsck.
mod verdict;
