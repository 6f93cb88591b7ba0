//! Reading a detached signature file (`.sig`), armored or binary, strictly: every packet
//! must be a signature packet, and nothing may follow the last one.

use std::io::Read;

use anyhow::{Result, anyhow, bail};
use pgp::armor::{BlockType, Dearmor};
use pgp::packet::{Packet, PacketParser, PacketTrait, Signature};

/// Reads every signature packet of a detached signature file, armored or binary. Anything
/// that is not a signature packet, and any byte after the last packet, is an error.
pub fn parse_signatures(bytes: &[u8]) -> Result<Vec<Signature>> {
    let binary = if bytes.starts_with(b"-----BEGIN") {
        dearmor(bytes)?
    } else {
        bytes.to_vec()
    };
    let mut signatures = Vec::new();
    let mut rest = &binary[..];
    while !rest.is_empty() {
        let len = packet_len(rest).ok_or_else(|| {
            anyhow!(
                "not an OpenPGP signature: {} bytes after the last packet are not a packet",
                rest.len()
            )
        })?;
        let (packet, tail) = rest.split_at(len);
        let mut parser = PacketParser::new(packet);
        let sig = match parser.next() {
            Some(Ok(Packet::Signature(sig))) => sig,
            Some(Ok(other)) => bail!(
                "not an OpenPGP signature: it holds a {:?} packet",
                other.tag()
            ),
            Some(Err(e)) => bail!("not an OpenPGP signature: {e}"),
            None => bail!("not an OpenPGP signature: a packet is cut short"),
        };
        signatures.push(sig);
        rest = tail;
    }
    if signatures.is_empty() {
        bail!("not an OpenPGP signature: it is empty");
    }
    Ok(signatures)
}

/// The bytes of one armored `PGP SIGNATURE` block; only whitespace may follow it.
fn dearmor(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut reader = Dearmor::new(bytes);
    let mut binary = Vec::new();
    reader
        .read_to_end(&mut binary)
        .map_err(|e| anyhow!("not an OpenPGP signature: the armor does not parse: {e}"))?;
    let (typ, _, _, mut after) = reader.into_parts();
    if typ != Some(BlockType::Signature) {
        bail!("not an OpenPGP signature: the armor holds {typ:?}, not PGP SIGNATURE");
    }
    let mut tail = Vec::new();
    after.read_to_end(&mut tail)?;
    if !tail.iter().all(u8::is_ascii_whitespace) {
        bail!("not an OpenPGP signature: text follows the armored signature");
    }
    Ok(binary)
}

/// The total length (header and body) of the packet at the start of `bytes`, when it is
/// complete. Partial body lengths are refused: signature packets never use them.
fn packet_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let (header, body): (usize, usize) = if first & 0x40 != 0 {
        match *bytes.get(1)? as usize {
            n @ 0..=191 => (2, n),
            n @ 192..=223 => (3, ((n - 192) << 8) + *bytes.get(2)? as usize + 192),
            255 => {
                let b = bytes.get(2..6)?;
                (6, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            }
            _ => return None,
        }
    } else {
        match first & 0x03 {
            0 => (2, *bytes.get(1)? as usize),
            1 => {
                let b = bytes.get(1..3)?;
                (3, u16::from_be_bytes([b[0], b[1]]) as usize)
            }
            2 => {
                let b = bytes.get(1..5)?;
                (5, u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            }
            _ => return None,
        }
    };
    let total = header.checked_add(body)?;
    (total <= bytes.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::openpgp::tests::throwaway_key;
    use pgp::composed::{ArmorOptions, DetachedSignature};
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::ser::Serialize;
    use pgp::types::Password;

    fn signature() -> DetachedSignature {
        let key = throwaway_key();
        DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            &b"data"[..],
        )
        .unwrap()
    }

    #[test]
    fn every_packet_is_read_and_nothing_may_follow() {
        let sig = signature();
        let binary = sig.to_bytes().unwrap();
        assert_eq!(parse_signatures(&binary).unwrap().len(), 1);
        let two = [binary.clone(), binary.clone()].concat();
        assert_eq!(parse_signatures(&two).unwrap().len(), 2);
        assert!(parse_signatures(&[binary.clone(), vec![0]].concat()).is_err());

        let armored = sig.to_armored_string(ArmorOptions::default()).unwrap();
        assert_eq!(parse_signatures(armored.as_bytes()).unwrap().len(), 1);
        let spaced = format!("{armored}\n\n");
        assert!(parse_signatures(spaced.as_bytes()).is_ok());
        let trailing = format!("{armored}\ngarbage\n");
        let err = parse_signatures(trailing.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("follows"), "{err}");
    }

    #[test]
    fn garbage_and_cut_packets_are_not_signatures() {
        assert!(parse_signatures(b"").is_err());
        assert!(parse_signatures(b"hello").is_err());
        // A new-format signature header (tag 2) promising 10 bytes, with 3.
        assert!(parse_signatures(&[0xc2, 10, 1, 2, 3]).is_err());
        assert_eq!(packet_len(&[0xc2, 3, 1, 2, 3, 9]), Some(5));
        assert_eq!(packet_len(&[0x89, 0, 2, 1, 2]), Some(5));
    }
}
