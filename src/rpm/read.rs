//! Reads an RPM's signature header and main header back (for repository indexes and for
//! signing a package's repository copy). Only the headers are read, never the payload.

use std::io::Read;

use anyhow::{Context, Result, bail};

use super::header::{Header, Value, signature_padding};

/// A header as stored: index entries (tag, type, offset, count) and the data store.
#[derive(Debug, Clone)]
pub struct StoredHeader {
    entries: Vec<(u32, u32, u32, u32)>,
    store: Vec<u8>,
    /// The header's bytes exactly as in the file.
    pub bytes: Vec<u8>,
}

impl StoredHeader {
    /// Reads one header from `r`.
    pub fn read(r: &mut impl Read) -> Result<Self> {
        let mut intro = [0u8; 16];
        r.read_exact(&mut intro).context("reading an RPM header")?;
        if intro[..3] != [0x8e, 0xad, 0xe8] {
            bail!("not an RPM header (bad magic)");
        }
        let count = u32::from_be_bytes(intro[8..12].try_into().unwrap()) as usize;
        let size = u32::from_be_bytes(intro[12..16].try_into().unwrap()) as usize;
        if count > 100_000 || size > 256 << 20 {
            bail!("an RPM header of {count} entries and {size} bytes is not plausible");
        }
        let mut rest = vec![0u8; count * 16 + size];
        r.read_exact(&mut rest).context("reading an RPM header")?;
        let entries = rest[..count * 16]
            .chunks(16)
            .map(|c| {
                let n = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().unwrap());
                (n(0), n(4), n(8), n(12))
            })
            .collect();
        let store = rest[count * 16..].to_vec();
        let mut bytes = intro.to_vec();
        bytes.extend_from_slice(&rest);
        Ok(StoredHeader {
            entries,
            store,
            bytes,
        })
    }

    fn entry(&self, tag: u32) -> Option<(u32, usize, usize)> {
        self.entries
            .iter()
            .find(|e| e.0 == tag)
            .map(|e| (e.1, e.2 as usize, e.3 as usize))
    }

    /// True when the header has `tag`.
    pub fn has(&self, tag: u32) -> bool {
        self.entry(tag).is_some()
    }

    /// The value of `tag` in the writer's [`Value`] model (`None` when absent or of a type
    /// mm-pkg does not model).
    pub fn value(&self, tag: u32) -> Option<Value> {
        let (kind, offset, count) = self.entry(tag)?;
        let store = &self.store;
        let strings = |n: usize| {
            let mut out = Vec::with_capacity(n);
            let mut pos = offset;
            for _ in 0..n {
                let end = pos + store.get(pos..)?.iter().position(|b| *b == 0)?;
                out.push(String::from_utf8_lossy(&store[pos..end]).into_owned());
                pos = end + 1;
            }
            Some(out)
        };
        match kind {
            3 => Some(Value::Int16(
                store
                    .get(offset..offset + 2 * count)?
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            )),
            4 => Some(Value::Int32(
                store
                    .get(offset..offset + 4 * count)?
                    .chunks(4)
                    .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
                    .collect(),
            )),
            6 => Some(Value::Str(strings(1)?.remove(0))),
            7 => Some(Value::Bin(store.get(offset..offset + count)?.to_vec())),
            8 => Some(Value::StrArray(strings(count)?)),
            9 => Some(Value::I18n(strings(1)?.remove(0))),
            _ => None,
        }
    }

    /// A string value (the first of an array, the "C" entry of an i18n string).
    pub fn string(&self, tag: u32) -> Option<String> {
        match self.value(tag)? {
            Value::Str(s) | Value::I18n(s) => Some(s),
            Value::StrArray(mut v) if !v.is_empty() => Some(v.remove(0)),
            _ => None,
        }
    }

    /// A string array (empty when absent).
    pub fn strings(&self, tag: u32) -> Vec<String> {
        match self.value(tag) {
            Some(Value::StrArray(v)) => v,
            Some(Value::Str(s)) | Some(Value::I18n(s)) => vec![s],
            _ => Vec::new(),
        }
    }

    /// An integer array (INT16 or INT32; empty when absent).
    pub fn numbers(&self, tag: u32) -> Vec<u32> {
        match self.value(tag) {
            Some(Value::Int32(v)) => v,
            Some(Value::Int16(v)) => v.into_iter().map(u32::from).collect(),
            _ => Vec::new(),
        }
    }

    /// The header as an editable [`Header`] without its region tag `region`; fails when an
    /// entry has a type mm-pkg does not model.
    pub fn to_header(&self, region: u32) -> Result<Header> {
        let mut h = Header::new();
        for (tag, kind, _, _) in &self.entries {
            if *tag == region {
                continue;
            }
            let Some(value) = self.value(*tag) else {
                bail!("RPM header tag {tag} has type {kind}, which mm-pkg cannot rewrite");
            };
            h.set(*tag, value);
        }
        Ok(h)
    }
}

/// The lead and both headers of an RPM file.
#[derive(Debug, Clone)]
pub struct RpmHeaders {
    /// The 96-byte lead.
    pub lead: Vec<u8>,
    /// The signature header.
    pub signature: StoredHeader,
    /// The main header.
    pub header: StoredHeader,
    /// Offset of the main header in the file.
    pub header_start: u64,
    /// Offset where the payload starts.
    pub header_end: u64,
}

/// Reads the lead and headers from `r` (positioned at the start of an RPM file).
pub fn read_headers(r: &mut impl Read) -> Result<RpmHeaders> {
    let mut lead = vec![0u8; 96];
    r.read_exact(&mut lead).context("reading the RPM lead")?;
    if lead[..4] != [0xed, 0xab, 0xee, 0xdb] {
        bail!("not an RPM file (bad lead magic)");
    }
    let signature = StoredHeader::read(r)?;
    let pad = signature_padding(signature.bytes.len());
    let mut skip = vec![0u8; pad];
    r.read_exact(&mut skip)?;
    let header = StoredHeader::read(r)?;
    let header_start = (96 + signature.bytes.len() + pad) as u64;
    let header_end = header_start + header.bytes.len() as u64;
    Ok(RpmHeaders {
        lead,
        signature,
        header,
        header_start,
        header_end,
    })
}
