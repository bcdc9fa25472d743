//! The memory the X server writes captured pixels into (MIT-SHM): an
//! anonymous memfd, sealed to its size, passed to the server
//! (`shm::attach_fd`) and mapped read-only here. The only `unsafe` of the
//! agent is the mapping, in this module.
#![allow(unsafe_code)]

use std::os::fd::OwnedFd;

use rustix::fs::{MemfdFlags, SealFlags};

/// Name of the memfd (shows in `/proc/PID/fd` of the agent and the X server).
const MEMFD_NAME: &str = "lifeline-screen";

/// A shared memory segment of a fixed size.
pub struct SharedMemory {
    fd: OwnedFd,
    map: memmap2::Mmap,
}

impl SharedMemory {
    /// A segment of `len` bytes (at least 1), zeroed.
    pub fn new(len: usize) -> std::io::Result<SharedMemory> {
        let len = len.max(1);
        let fd =
            rustix::fs::memfd_create(MEMFD_NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        // Nobody (the agent or the X server) can change its size from now on.
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        // SAFETY: `memmap2` requires that the mapped file is not truncated
        // while mapped (access past its end would raise SIGBUS) and warns
        // that other processes may modify it. The memfd is anonymous and
        // sealed against shrinking and growing above, so its size stays
        // `len` for the mapping's life. The only other writer is the X
        // server, which writes into the segment only while answering a
        // `shm::get_image` of ours; [`SharedMemory::bytes`] is read only
        // after that request's reply arrived (the caller holds the capture's
        // lock, so no other request of ours is in flight meanwhile).
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&fd)? };
        Ok(SharedMemory { fd, map })
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A second descriptor of the segment, for the X server (sent with
    /// `shm::attach_fd`, which closes it on our side once sent).
    pub fn server_fd(&self) -> std::io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// `len` bytes from `offset` (after the server wrote them).
    pub fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.map.get(offset..offset.checked_add(len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_sealed_to_its_size() {
        let m = SharedMemory::new(4096).unwrap();
        assert_eq!(m.len(), 4096);
        assert_eq!(m.bytes(4000, 96).map(|b| b.len()), Some(96));
        assert!(m.bytes(4000, 97).is_none());
        let fd = m.server_fd().unwrap();
        assert!(
            rustix::fs::ftruncate(&fd, 1).is_err(),
            "the server's descriptor cannot shrink it"
        );
        assert!(m.bytes(0, 4096).unwrap().iter().all(|b| *b == 0));
    }
}
