//! Checks on `bin/mattermost` made while its bytes stream past once: its ELF header must
//! name the architecture being packaged, and the requested version should appear in it
//! (upstream's binary embeds its list of versions, current first; see
//! server/public/model/version.go in mattermost/mattermost).

use std::io::{self, Read};

use anyhow::{Result, bail};
use memchr::memmem;

use crate::release::Arch;

/// Where the server binary is in a release.
pub const SERVER_PATH: &str = "bin/mattermost";

const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELF_HEADER: usize = 20; // up to and including e_machine

/// What is learnt from the server binary's bytes.
#[derive(Debug)]
pub struct ServerCheck {
    needle: Vec<u8>,
    head: Vec<u8>,
    tail: Vec<u8>,
    found: bool,
}

impl ServerCheck {
    /// Looks for `version` in the bytes fed to it.
    pub fn new(version: &str) -> Self {
        ServerCheck {
            needle: version.as_bytes().to_vec(),
            head: Vec::with_capacity(ELF_HEADER),
            tail: Vec::new(),
            found: false,
        }
    }

    /// Takes the next bytes of the binary.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.head.len() < ELF_HEADER {
            let take = (ELF_HEADER - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if self.found || self.needle.is_empty() || chunk.is_empty() {
            return;
        }
        let keep = self.needle.len() - 1;
        // A match across the previous chunk and this one.
        self.tail.extend_from_slice(&chunk[..keep.min(chunk.len())]);
        if memmem::find(&self.tail, &self.needle).is_some()
            || memmem::find(chunk, &self.needle).is_some()
        {
            self.found = true;
            return;
        }
        if chunk.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        } // else the tail already ends with the whole chunk
        if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
    }

    /// True when the version string appeared in the binary.
    pub fn version_found(&self) -> bool {
        self.found
    }

    /// Refuses a binary that is not a 64-bit little-endian ELF executable for `arch`.
    pub fn check_arch(&self, arch: Arch) -> Result<()> {
        check_elf(&self.head, arch)
    }
}

/// Refuses `head` (the first bytes of `bin/mattermost`) unless it is an ELF executable for
/// `arch`.
pub fn check_elf(head: &[u8], arch: Arch) -> Result<()> {
    if head.len() < ELF_HEADER || &head[..4] != ELF_MAGIC {
        bail!("{SERVER_PATH} is not an ELF executable: this is not a Linux server release");
    }
    let e_type = u16::from_le_bytes([head[16], head[17]]);
    let machine = u16::from_le_bytes([head[18], head[19]]);
    let (class, little_endian) = (head[4], head[5] == 1);
    if little_endian && !matches!(e_type, 2 | 3) {
        bail!("{SERVER_PATH} is an ELF file but not an executable (type {e_type})");
    }
    let found = match (class, little_endian, machine) {
        (2, true, 62) => Some(Arch::Amd64),
        (2, true, 183) => Some(Arch::Arm64),
        _ => None,
    };
    if found != Some(arch) {
        let name = match (class, machine) {
            (_, 62) => "x86-64".to_string(),
            (_, 183) => "aarch64".to_string(),
            (_, 3) => "i386".to_string(),
            (_, 40) => "32-bit ARM".to_string(),
            (c, m) => format!("ELF machine {m} (class {c})"),
        };
        bail!(
            "{SERVER_PATH} is an executable for {name}, not for {arch} (--arch {arch}): this \
             tarball was built for another architecture"
        );
    }
    Ok(())
}

/// A reader that shows every byte it passes on to a [`ServerCheck`].
pub struct Inspect<'a, R> {
    inner: R,
    check: &'a mut ServerCheck,
}

impl<'a, R> Inspect<'a, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, check: &'a mut ServerCheck) -> Self {
        Inspect { inner, check }
    }
}

impl<R: Read> Read for Inspect<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(ELF_MAGIC);
        h[4] = 2;
        h[5] = 1;
        h[16] = 2;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn the_elf_machine_must_match_the_arch() {
        assert!(check_elf(&elf(62), Arch::Amd64).is_ok());
        assert!(check_elf(&elf(183), Arch::Arm64).is_ok());
        let wrong = check_elf(&elf(62), Arch::Arm64).unwrap_err().to_string();
        assert!(wrong.contains("for x86-64, not for arm64"), "{wrong}");
        assert!(check_elf(b"#!/bin/sh\necho hi\n and more", Arch::Amd64).is_err());
    }

    #[test]
    fn the_version_is_found_across_chunk_boundaries() {
        let bytes = b"xx9.11.919.11.909.11.0yy".to_vec();
        for split in 1..bytes.len() {
            let mut check = ServerCheck::new("9.11.90");
            for chunk in bytes.chunks(split) {
                check.feed(chunk);
            }
            assert!(check.version_found(), "split {split}");
        }
        let mut check = ServerCheck::new("9.11.92");
        for chunk in bytes.chunks(3) {
            check.feed(chunk);
        }
        assert!(!check.version_found());
    }
}
