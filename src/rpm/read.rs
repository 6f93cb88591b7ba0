//! Reads an RPM back as rpm does before it trusts a byte of it (for repository indexes, for
//! signing a package's repository copy, and for `repo verify`): the lead, then the signature
//! header and the main header, each checked entry by entry as rpm's `hdrblobVerifyInfo` and
//! `hdrblobVerifyRegion` check them (types, alignment, bounds, data in index order, the
//! immutable region), then the payload against the digests and size the headers carry.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use md5::Md5;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::header::{Header, Value, signature_padding, tag};

/// Largest header rpm reads (its `HEADER_MAX_BYTES`).
pub const MAX_HEADER_BYTES: usize = 256 << 20;
/// Most index entries in one header (far beyond any real package; rpm allows 16 million but
/// a header that large would not fit [`MAX_HEADER_BYTES`] anyway).
const MAX_ENTRIES: usize = 1 << 20;

/// A header as stored: index entries (tag, type, offset, count) and the data store, checked.
#[derive(Debug, Clone)]
pub struct StoredHeader {
    entries: Vec<(u32, u32, u32, u32)>,
    store: Vec<u8>,
    /// The header's bytes exactly as in the file.
    pub bytes: Vec<u8>,
}

/// Bytes per element of header type `kind` (1 for strings and binary data), or `None` for a
/// type rpm does not know.
fn element_size(kind: u32) -> Option<usize> {
    match kind {
        1 | 2 | 6..=9 => Some(1),
        3 => Some(2),
        4 => Some(4),
        5 => Some(8),
        _ => None,
    }
}

impl StoredHeader {
    /// Reads one header from `r` and checks its structure; `region` is the region tag it must
    /// open with ([`tag::HEADERSIGNATURES`] or [`tag::HEADERIMMUTABLE`]).
    pub fn read(r: &mut impl Read, region: u32) -> Result<Self> {
        let mut intro = [0u8; 16];
        r.read_exact(&mut intro)
            .context("the file ends inside an RPM header (truncated)")?;
        if intro[..8] != [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0] {
            bail!("not an RPM header (bad magic)");
        }
        let count = u32::from_be_bytes(intro[8..12].try_into().unwrap()) as usize;
        let size = u32::from_be_bytes(intro[12..16].try_into().unwrap()) as usize;
        if count == 0 || count > MAX_ENTRIES || count * 16 + size > MAX_HEADER_BYTES {
            bail!("an RPM header of {count} entries and {size} bytes is not plausible");
        }
        let mut rest = vec![0u8; count * 16 + size];
        r.read_exact(&mut rest)
            .context("the file ends inside an RPM header (truncated)")?;
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
        let header = StoredHeader {
            entries,
            store,
            bytes,
        };
        header.check(region)?;
        Ok(header)
    }

    /// rpm's checks: the region first, then every other entry of a known type, aligned,
    /// inside the store, its data after the previous entry's and clear of the region trailer.
    fn check(&self, region: u32) -> Result<()> {
        let dl = self.store.len();
        let (tag0, kind0, offset0, count0) = self.entries[0];
        if tag0 != region || kind0 != 7 || count0 != 16 {
            bail!(
                "the RPM header does not open with its region tag {region} (damaged, or older than rpm 4)"
            );
        }
        let trailer_at = offset0 as usize;
        let trailer = self
            .store
            .get(trailer_at..trailer_at + 16)
            .ok_or_else(|| anyhow!("the RPM header's region trailer lies outside the header"))?;
        let n = |i: usize| u32::from_be_bytes(trailer[i..i + 4].try_into().unwrap());
        let region_entries = (n(8) as i32).checked_neg().unwrap_or(0) as usize / 16;
        if n(0) != region
            || n(4) != 7
            || n(12) != 16
            || (n(8) as i32) >= 0
            || (n(8) as i32) % 16 != 0
            || region_entries > self.entries.len()
        {
            bail!("the RPM header's region trailer is damaged");
        }
        let region_end = trailer_at + 16;
        let mut end = 0usize;
        for (i, &(tag, kind, offset, count)) in self.entries.iter().enumerate().skip(1) {
            let bad = |why: &str| anyhow!("RPM header entry {i} (tag {tag}): {why}");
            let size = element_size(kind).ok_or_else(|| bad("unknown type"))?;
            let (offset, count) = (offset as usize, count as usize);
            if count == 0 || count >= 1 << 24 {
                return Err(bad("implausible count"));
            }
            if kind == 6 && count != 1 {
                return Err(bad("a STRING with a count other than 1"));
            }
            if offset % size != 0 {
                return Err(bad("misaligned data"));
            }
            if offset < end {
                return Err(bad("its data overlaps the entry before it"));
            }
            let len = match kind {
                6 | 8 | 9 => {
                    let mut pos = offset;
                    for _ in 0..count {
                        let nul = self
                            .store
                            .get(pos..)
                            .and_then(|s| s.iter().position(|b| *b == 0))
                            .ok_or_else(|| bad("a string runs past the end of the header"))?;
                        pos += nul + 1;
                    }
                    pos - offset
                }
                _ => count * size,
            };
            if offset + len > dl {
                return Err(bad("its data runs past the end of the header"));
            }
            end = offset + len;
            if end > trailer_at && offset < region_end {
                return Err(bad("its data overlaps the region trailer"));
            }
        }
        Ok(())
    }

    fn entry(&self, tag: u32) -> Option<(u32, usize, usize)> {
        self.entries
            .iter()
            .skip(1)
            .find(|e| e.0 == tag)
            .map(|e| (e.1, e.2 as usize, e.3 as usize))
    }

    /// True when the header has `tag`.
    pub fn has(&self, tag: u32) -> bool {
        self.entry(tag).is_some()
    }

    /// The value of `tag` in the writer's [`Value`] model: `Ok(None)` when absent; an error
    /// when its strings are not UTF-8 or its type is one mm-pkg does not model.
    pub fn get(&self, tag: u32) -> Result<Option<Value>> {
        let Some((kind, offset, count)) = self.entry(tag) else {
            return Ok(None);
        };
        // Bounds and terminators were checked when the header was read.
        let store = &self.store;
        let strings = |n: usize| -> Result<Vec<String>> {
            let mut out = Vec::with_capacity(n.min(4096));
            let mut pos = offset;
            for _ in 0..n {
                let end = pos + store[pos..].iter().position(|b| *b == 0).unwrap_or(0);
                let text = std::str::from_utf8(&store[pos..end])
                    .map_err(|_| anyhow!("RPM header tag {tag} is not valid UTF-8"))?;
                out.push(text.to_string());
                pos = end + 1;
            }
            Ok(out)
        };
        let ints = |width: usize| {
            store[offset..offset + width * count]
                .chunks(width)
                .map(|c| c.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)))
        };
        Ok(Some(match kind {
            3 => Value::Int16(ints(2).map(|v| v as u16).collect()),
            4 => Value::Int32(ints(4).map(|v| v as u32).collect()),
            5 => Value::Int64(ints(8).collect()),
            6 => Value::Str(strings(1)?.remove(0)),
            7 => Value::Bin(store[offset..offset + count].to_vec()),
            8 => Value::StrArray(strings(count)?),
            9 => Value::I18n(strings(count)?.remove(0)),
            _ => bail!("RPM header tag {tag} has type {kind}, which mm-pkg does not read"),
        }))
    }

    /// The value of `tag`, `None` when absent or unreadable (see [`Self::get`]).
    pub fn value(&self, tag: u32) -> Option<Value> {
        self.get(tag).ok().flatten()
    }

    /// A string (the "C" entry of an i18n string); `Ok(None)` when absent, an error when it
    /// has another type or is not UTF-8.
    pub fn text(&self, tag: u32) -> Result<Option<String>> {
        match self.get(tag)? {
            None => Ok(None),
            Some(Value::Str(s) | Value::I18n(s)) => Ok(Some(s)),
            Some(_) => bail!("RPM header tag {tag} is not a string"),
        }
    }

    /// A string array (empty when absent); an error when it has another type or is not UTF-8.
    pub fn texts(&self, tag: u32) -> Result<Vec<String>> {
        match self.get(tag)? {
            None => Ok(Vec::new()),
            Some(Value::StrArray(v)) => Ok(v),
            Some(_) => bail!("RPM header tag {tag} is not a string array"),
        }
    }

    /// An integer array of any width (empty when absent); an error for any other type.
    pub fn ints(&self, tag: u32) -> Result<Vec<u64>> {
        match self.get(tag)? {
            None => Ok(Vec::new()),
            Some(Value::Int16(v)) => Ok(v.into_iter().map(u64::from).collect()),
            Some(Value::Int32(v)) => Ok(v.into_iter().map(u64::from).collect()),
            Some(Value::Int64(v)) => Ok(v),
            Some(_) => bail!("RPM header tag {tag} is not an integer"),
        }
    }

    /// The header as an editable [`Header`] without its region tag `region`; fails when an
    /// entry has a type mm-pkg does not model.
    pub fn to_header(&self, region: u32) -> Result<Header> {
        let mut h = Header::new();
        for (tag, kind, _, _) in self.entries.iter().skip(1) {
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
    r.read_exact(&mut lead)
        .context("the file ends inside the RPM lead")?;
    if lead[..4] != [0xed, 0xab, 0xee, 0xdb] {
        bail!("not an RPM file (bad lead magic)");
    }
    if !(3..=4).contains(&lead[4]) || lead[78..80] != [0, 5] {
        bail!(
            "an RPM lead of version {} with signature type {}: rpm reads only version 3 and 4 \
             leads with header signatures (type 5)",
            lead[4],
            u16::from_be_bytes([lead[78], lead[79]])
        );
    }
    let signature =
        StoredHeader::read(r, tag::HEADERSIGNATURES).context("the signature header is damaged")?;
    let pad = signature_padding(signature.bytes.len());
    let mut skip = vec![0u8; pad];
    r.read_exact(&mut skip)
        .context("the file ends after the signature header (truncated)")?;
    let header =
        StoredHeader::read(r, tag::HEADERIMMUTABLE).context("the main header is damaged")?;
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

/// A hash the payload digest may use: rpm's `PAYLOADDIGESTALGO` values.
enum PayloadHash {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl PayloadHash {
    fn of_algorithm(algo: u64) -> Result<Self> {
        Ok(match algo {
            8 => PayloadHash::Sha256(Sha256::new()),
            9 => PayloadHash::Sha384(Sha384::new()),
            10 => PayloadHash::Sha512(Sha512::new()),
            other => bail!(
                "its payload digest uses algorithm {other}; mm-pkg checks SHA-256, SHA-384 \
                 and SHA-512 (rpmbuild's)"
            ),
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            PayloadHash::Sha256(h) => h.update(data),
            PayloadHash::Sha384(h) => h.update(data),
            PayloadHash::Sha512(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            PayloadHash::Sha256(h) => hex::encode(h.finalize()),
            PayloadHash::Sha384(h) => hex::encode(h.finalize()),
            PayloadHash::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Checks what `rpmkeys --checksig --nosignature` checks: the main header against the
/// signature header's SHA-256 (or SHA-1), then the payload `payload` (read to its end) against
/// the header's payload digest and the legacy MD5, and the size of header and payload against
/// `SIZE`/`LONGSIZE`. A package whose payload no digest covers is refused, since a truncated
/// copy of it could not be told from the whole file.
pub fn check_digests(headers: &RpmHeaders, payload: &mut impl Read) -> Result<()> {
    let (sig, header) = (&headers.signature, &headers.header);
    let sha256 = sig.text(tag::SIG_SHA256)?;
    let sha1 = sig.text(tag::SIG_SHA1)?;
    let header_sha256 = hex::encode(Sha256::digest(&header.bytes));
    let header_sha1 = hex::encode(sha1::Sha1::digest(&header.bytes));
    match (&sha256, &sha1) {
        (None, None) => bail!("its signature header has no digest of the main header"),
        (Some(d), _) if !d.eq_ignore_ascii_case(&header_sha256) => {
            bail!("its main header does not match its SHA-256 digest (damaged or altered)")
        }
        (_, Some(d)) if !d.eq_ignore_ascii_case(&header_sha1) => {
            bail!("its main header does not match its SHA-1 digest (damaged or altered)")
        }
        _ => {}
    }
    let expected = header.texts(tag::PAYLOADDIGEST)?.into_iter().next();
    let mut hash = match &expected {
        Some(_) => {
            let algo = header.ints(tag::PAYLOADDIGESTALGO)?.first().copied();
            Some(PayloadHash::of_algorithm(algo.unwrap_or(8))?)
        }
        None => None,
    };
    let md5_expected = match sig.get(tag::SIG_MD5)? {
        Some(Value::Bin(b)) if b.len() == 16 => Some(b),
        None => None,
        Some(_) => bail!("its signature header's MD5 is not 16 bytes"),
    };
    if expected.is_none() && md5_expected.is_none() {
        bail!(
            "no digest covers its payload (no PAYLOADDIGEST, no MD5): a truncated or damaged \
             copy could not be told from the whole package; rebuild it with rpm 4.14 or later"
        );
    }
    let mut md5 = md5_expected.as_ref().map(|_| {
        let mut m = Md5::new();
        m.update(&header.bytes);
        m
    });
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = payload.read(&mut buf).context("reading the payload")?;
        if n == 0 {
            break;
        }
        len += n as u64;
        if let Some(h) = hash.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(m) = md5.as_mut() {
            m.update(&buf[..n]);
        }
    }
    let long = sig.ints(tag::SIG_LONGSIZE)?.first().copied();
    let size = long.or(sig.ints(tag::SIG_SIZE)?.first().copied());
    let total = header.bytes.len() as u64 + len;
    if let Some(size) = size
        && size != total
    {
        bail!(
            "its headers say header and payload are {size} bytes, the file holds {total} \
             (truncated or padded)"
        );
    }
    if let (Some(want), Some(h)) = (expected, hash)
        && !want.eq_ignore_ascii_case(&h.hex())
    {
        bail!("its payload does not match its payload digest (truncated, damaged or altered)");
    }
    if let (Some(want), Some(m)) = (md5_expected, md5)
        && m.finalize()[..] != want[..]
    {
        bail!("its header and payload do not match their MD5 (truncated, damaged or altered)");
    }
    Ok(())
}
