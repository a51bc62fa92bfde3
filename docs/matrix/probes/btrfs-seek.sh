#!/bin/sh
# What crawls on btrfs with 20,000 extents (docs/matrix/report.md):
#   cargo xtask matrix --kernel 6.1 --accel tcg --script docs/matrix/probes/btrfs-seek.sh
# A 160 MiB file of 20,000 4 KiB data extents every 8 KiB (the layout test's
# alternating_20000) on btrfs on a loop device; times a SEEK_DATA/SEEK_HOLE
# walk (xfs_io seek -a) before and after the file is read whole, FIEMAP,
# cp and sparsecp (its lseeks traced). Every step is cut off after LIMIT
# seconds. $1: the out directory.
OUT=$1
W=$(cd "$(dirname "$0")/../../.." && pwd)
d=$SPARSECP_SCRATCH/probe-btrfs; rm -rf "$d"; mkdir -p "$d"
t() { s=$(date +%s.%N); timeout "$LIMIT" "$@" > /dev/null; rc=$?; e=$(date +%s.%N)
      echo "$(echo "$e $s" | awk '{printf "%8.2f", $1-$2}') s (exit $rc): $*"; }
LIMIT=300
echo "== kernel $(uname -r)"
truncate -s 768M "$d/b.raw" && mkfs.btrfs -q -f -K "$d/b.raw" > /dev/null 2>&1 && mkdir -p "$d/b" && mount -o loop "$d/b.raw" "$d/b"
f=$d/b/src.img
t perl -e 'open(F,"+>",$ARGV[0]) or die; truncate(F, 40000*4096); for $i (0..19999) { sysseek(F, 2*$i*4096, 0); syswrite(F, pack("N",$i+1) x 1024) == 4096 or die }' "$f"
t sync
t xfs_io -r -c 'seek -a -r 0' "$f"
t cat "$f"
t xfs_io -r -c 'seek -a -r 0' "$f"
t xfs_io -r -c 'fiemap' "$f"
echo 3 > /proc/sys/vm/drop_caches
t xfs_io -r -c 'seek -a -r 0' "$f"
t cp --reflink=never --sparse=always "$f" "$d/b/cp.img"
t rm "$d/b/cp.img"; t sync
# timeout inside strace: a tracer killed mid-lseek may leave its tracee behind.
t strace -f -T -e trace=lseek -o "$OUT/strace-sparsecp" timeout 150 "$W/target/debug/sparsecp" copy --reflink never --sparse auto "$f" "$d/b/sp.img"
grep lseek "$OUT/strace-sparsecp" | awk -F'<' '{sub(/>.*/, "", $2); s += $2; n++} END {printf "sparsecp: %d lseeks, %.3f ms each on average\n", n, s / n * 1000}'
umount -d "$d/b"
rm -rf "$d"
