//! LOOP_GET_STATUS64: the device and inode of a loop device's backing file
//! as the kernel holds them, with no path involved (a path can be renamed,
//! bind-mounted or outside our mount namespace). rustix has no wrapper for
//! this ioctl, so this module declares the kernel's struct and issues it
//! through libc.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

const LOOP_GET_STATUS64: libc::c_ulong = 0x4C05;
const LO_FLAGS_READ_ONLY: u32 = 1;

/// `struct loop_info64` from `linux/loop.h`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// What backs an attached loop device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopBacking {
    /// `(major, minor)` of the filesystem holding the backing file.
    pub dev: (u32, u32),
    /// The backing file's inode number.
    pub ino: u64,
    /// Attached read-only.
    pub read_only: bool,
}

/// The backing file of the loop device node `device`, or `Ok(None)` when
/// it is not attached (`ENXIO`). Opening the node needs read permission
/// (root, or the `disk` group); the caller falls back to sysfs without it.
pub fn loop_backing(device: &Path) -> io::Result<Option<LoopBacking>> {
    let file = File::open(device)?;
    // SAFETY: all-zero bytes are a valid `LoopInfo64` (integers and byte
    // arrays only).
    let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a live, exclusively borrowed `struct loop_info64`,
    // exactly what the kernel writes for LOOP_GET_STATUS64; the fd is open
    // for the whole call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            LOOP_GET_STATUS64 as _,
            &mut info as *mut LoopInfo64,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(err),
        };
    }
    // The kernel encodes lo_device as new_encode_dev (huge_encode_dev).
    let d = info.lo_device;
    let major = ((d & 0xfff00) >> 8) as u32;
    let minor = ((d & 0xff) | ((d >> 12) & 0xfff00)) as u32;
    Ok(Some(LoopBacking {
        dev: (major, minor),
        ino: info.lo_inode,
        read_only: info.lo_flags & LO_FLAGS_READ_ONLY != 0,
    }))
}
