#!/bin/sh
# Where active.img's allocation differs between kernels (docs/matrix/report.md):
#   cargo xtask matrix --kernel 6.1 --accel tcg --script docs/matrix/probes/active-img-map.sh
# Runs the gate with a copier that first records active.img's extents
# (filefrag -v), its ext2 layout (dumpe2fs) and a sparse copy of it into the
# out directory; then traces which zeroing calls mkfs.ext2 makes on a file
# on loop-mounted ext4, as the harness's COS_STATE. $1: the out directory.
OUT=$1
W=$(cd "$(dirname "$0")/../../.." && pwd)
d=$SPARSECP_SCRATCH/probe-active; rm -rf "$d"; mkdir -p "$d"
echo "== kernel $(uname -r)"
cat > "$d/record.sh" <<'REC'
src=$1; dst=$2; o=$PROBE_OUT
stat -c '%s %b %B' "$src" > "$o/active.stat"
filefrag -v "$src" > "$o/active.filefrag" 2>&1
dumpe2fs "$src" > "$o/active.dumpe2fs" 2>&1
cp --sparse=always "$src" "$o/active.img"
cp --sparse=always "$src" "$dst"
REC
(cd "$d" && PROBE_OUT=$OUT "$W/target/debug/sparsecp-gate" gate --copier "sh $d/record.sh {src} {dst}" \
  --scenario harvester-install --scale 0.05 --out "$d/gate-report") > "$OUT/gate.out" 2>&1
echo "active.img: size, 512-byte blocks: $(cut -d' ' -f1,2 "$OUT/active.stat")"
grep -E "^(Block count|Free blocks):|free blocks," "$OUT/active.dumpe2fs"
size=$(cut -d' ' -f1 "$OUT/active.stat")
truncate -s 4G "$d/state.raw" && mkfs.ext4 -q -F -E nodiscard "$d/state.raw" && mkdir -p "$d/state" && mount -o loop "$d/state.raw" "$d/state"
truncate -s "$size" "$d/state/a.img"
u=6a3ad0b2-2ef6-4b8e-9b8f-3b1f2a6c1d01
strace -e trace=fallocate,ioctl -o "$OUT/mkfs.strace" mkfs.ext2 -F -q -b 4096 -L COS_ACTIVE -U $u -E nodiscard,hash_seed=$u "$d/state/a.img"
grep fallocate "$OUT/mkfs.strace"
filefrag -v "$d/state/a.img" | tail -3
umount -d "$d/state"
rm -rf "$d"
