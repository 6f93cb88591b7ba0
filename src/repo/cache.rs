//! Index compression whose cost follows what changed, not what the repository holds.
//!
//! An index text (`Packages`, `primary.xml`, ...) is built as an [`IndexText`]: its header
//! and footer, each a chunk of its own, and between them its packages' entries in index
//! order, cut into chunks after an entry whose key hashes low ([`cut_after`]: about every
//! [`TARGET`] bytes, between [`MIN`] and [`MAX`]). Where a cut falls depends only on that
//! entry and the bytes since the cut before, so adding or removing one package changes the
//! chunk it belongs to and moves few other cuts.
//!
//! Each chunk is compressed on its own, referring to nothing before it: as a deflate run that
//! ends byte-aligned (the chunks of an index then form one gzip member, as `pigz` writes it)
//! and as one xz block (the chunks form one xz stream with one block each). [`Cache`] keeps
//! each compressed chunk between runs under `.mm-pkg/cache/`, in a file named by the SHA-256
//! of the exact text it compresses: `<sha256>.gz` is a whole gzip file of that text,
//! `<sha256>.xz` a whole xz file (`zcat`, `xzcat` read them). A cached file is used only
//! after it is decoded and found to give exactly that text, and only in the form mm-pkg
//! writes; anything else is made again. So the indexes' bytes depend only on their text,
//! never on what the cache held, and a planted or damaged cache file costs time, nothing
//! else.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use sha2::{Digest, Sha256};

use crate::compress::xz_format;

use super::dir::{Kind, RepoDir};
use super::files::Batch;

/// Directory of the cached chunks.
pub const CACHE_DIR: &str = ".mm-pkg/cache";
/// Uncompressed bytes a chunk holds on average.
pub const TARGET: usize = 32 * 1024;
/// Smallest chunk [`cut_after`] ends, unless it is the last.
pub const MIN: usize = TARGET / 2;
/// Largest chunk [`cut_after`] lets grow, unless one entry alone is larger.
pub const MAX: usize = TARGET * 2;
/// xz preset of each block.
const XZ_PRESET: u32 = 6;
/// Largest LZMA2 dictionary (preset 6's).
const XZ_MAX_DICT: usize = 8 << 20;
/// gzip member header: no name, no time stamp, maximum compression, Unix.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
/// The final, empty deflate block (fixed Huffman, end of block) that closes a gzip member.
const DEFLATE_END: [u8; 2] = [0x03, 0x00];

/// Whether a chunk ends after an entry of `len` bytes identified by `key`, `so_far` bytes
/// into the chunk (the entry included): never before [`MIN`] bytes, always from [`MAX`] on,
/// and in between with probability `len / (TARGET - MIN)` (so about every [`TARGET`] bytes),
/// decided by `key`'s hash.
pub fn cut_after(key: &str, len: usize, so_far: usize) -> bool {
    if so_far >= MAX {
        return true;
    }
    if so_far < MIN {
        return false;
    }
    let digest = Sha256::digest(key.as_bytes());
    let h = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as u128;
    h * ((TARGET - MIN) as u128) < (len as u128) << 32
}

/// An index text as chunks that are compressed one by one.
#[derive(Debug, Default)]
pub struct IndexText {
    chunks: Vec<Vec<u8>>,
}

impl IndexText {
    /// The text `head`, then `entries` (each with its key, in index order) cut into chunks,
    /// then `foot`.
    pub fn new<'a>(
        head: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
        foot: &str,
    ) -> Self {
        let mut text = Builder::new(head);
        for (key, entry) in entries {
            text.push(key, entry);
        }
        text.finish(foot)
    }

    /// The whole text.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// SHA-256 of the whole text.
    pub fn sha256(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for c in &self.chunks {
            h.update(c);
        }
        h.finalize().into()
    }

    /// Bytes of the whole text.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// True when the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An [`IndexText`] being built entry by entry (so that the entries need not all be held
/// at once).
pub struct Builder {
    chunks: Vec<Vec<u8>>,
    chunk: Vec<u8>,
}

impl Builder {
    /// A text that starts with `head` (a chunk of its own).
    pub fn new(head: &str) -> Self {
        let mut chunks = Vec::new();
        if !head.is_empty() {
            chunks.push(head.as_bytes().to_vec());
        }
        Builder {
            chunks,
            chunk: Vec::new(),
        }
    }

    /// Appends `entry`, identified by `key`; a chunk ends after it where [`cut_after`] says.
    pub fn push(&mut self, key: &str, entry: &str) {
        self.chunk.extend_from_slice(entry.as_bytes());
        if cut_after(key, entry.len(), self.chunk.len()) {
            self.chunks.push(std::mem::take(&mut self.chunk));
        }
    }

    /// The text, ending with `foot` (a chunk of its own).
    pub fn finish(mut self, foot: &str) -> IndexText {
        if !self.chunk.is_empty() {
            self.chunks.push(self.chunk);
        }
        if !foot.is_empty() {
            self.chunks.push(foot.as_bytes().to_vec());
        }
        IndexText {
            chunks: self.chunks,
        }
    }
}

/// Which compression a cached chunk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Xz,
}

impl Codec {
    fn suffix(self) -> &'static str {
        match self {
            Codec::Gzip => "gz",
            Codec::Xz => "xz",
        }
    }
}

/// One compressed chunk, as it goes into an index.
struct Piece {
    /// The deflate run, or the xz block.
    bytes: Vec<u8>,
    /// For an xz block: its unpadded size (as the xz index records it).
    unpadded: u64,
}

/// Compressed chunks: the ones earlier runs kept, checked before use, and the ones this run
/// makes.
pub struct Cache<'a> {
    dir: &'a RepoDir,
    /// Names of the cache files this run's indexes use.
    used: Mutex<BTreeSet<String>>,
    /// Cache files made in this run, by name.
    made: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl<'a> Cache<'a> {
    /// The cache of the repository `dir`.
    pub fn new(dir: &'a RepoDir) -> Self {
        Cache {
            dir,
            used: Mutex::new(BTreeSet::new()),
            made: Mutex::new(BTreeMap::new()),
        }
    }

    /// `text` as one gzip member.
    pub fn gzip(&self, text: &IndexText) -> Result<Vec<u8>> {
        let pieces = self.pieces(Codec::Gzip, text)?;
        let mut out = GZIP_HEADER.to_vec();
        let mut crc = crc32fast::Hasher::new();
        for (chunk, piece) in text.chunks.iter().zip(&pieces) {
            out.extend_from_slice(&piece.bytes);
            crc.update(chunk);
        }
        out.extend_from_slice(&DEFLATE_END);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        Ok(out)
    }

    /// `text` as one xz stream of one block per chunk.
    pub fn xz(&self, text: &IndexText) -> Result<Vec<u8>> {
        let pieces = self.pieces(Codec::Xz, text)?;
        let mut out = xz_format::stream_header();
        let mut records = Vec::with_capacity(pieces.len());
        for (chunk, piece) in text.chunks.iter().zip(&pieces) {
            out.extend_from_slice(&piece.bytes);
            records.push((piece.unpadded, chunk.len() as u64));
        }
        out.extend_from_slice(&xz_format::stream_end(&records));
        Ok(out)
    }

    /// The pieces of every chunk of `text`, from the cache or made now, several at once.
    fn pieces(&self, codec: Codec, text: &IndexText) -> Result<Vec<Piece>> {
        super::parallel::map(&text.chunks, |chunk| self.piece(codec, chunk))
    }

    /// The piece of `chunk`: from its cache file when that decodes to exactly `chunk`, else
    /// made (and checked) now.
    fn piece(&self, codec: Codec, chunk: &[u8]) -> Result<Piece> {
        let name = format!("{}.{}", hex::encode(Sha256::digest(chunk)), codec.suffix());
        self.used.lock().expect("cache lock").insert(name.clone());
        let made = self.made.lock().expect("cache lock").get(&name).cloned();
        let cached = match made {
            Some(file) => Some(file),
            // A cache file that cannot be read (a link, another owner) is not used.
            None => self
                .dir
                .read_private(&format!("{CACHE_DIR}/{name}"))
                .ok()
                .flatten(),
        };
        if let Some(piece) = cached.and_then(|file| unpack(codec, &file, chunk)) {
            return Ok(piece);
        }
        let file = match codec {
            Codec::Gzip => gzip_file(chunk)?,
            Codec::Xz => xz_file(chunk)?,
        };
        let Some(piece) = unpack(codec, &file, chunk) else {
            bail!("a compressed index chunk does not decode to its text: please report this");
        };
        self.made.lock().expect("cache lock").insert(name, file);
        Ok(piece)
    }

    /// Stages in `batch` the cache files this run made.
    pub fn stage(&self, batch: &mut Batch) -> Result<()> {
        for (name, file) in self.made.lock().expect("cache lock").iter() {
            batch.write(&format!("{CACHE_DIR}/{name}"), file)?;
        }
        Ok(())
    }

    /// Removes the cache files this run's indexes did not use (so that the cache holds the
    /// same files whatever the history).
    pub fn remove_unused(&self) -> Result<()> {
        let used = self.used.lock().expect("cache lock");
        for entry in self.dir.list(CACHE_DIR)? {
            if entry.kind != Kind::File || !used.contains(&entry.name) {
                self.dir
                    .remove_file(&format!("{CACHE_DIR}/{}", entry.name))?;
            }
        }
        Ok(())
    }
}

/// The piece inside the cache `file` when it is exactly the file mm-pkg writes for `chunk`
/// and decodes to `chunk`; `None` otherwise.
fn unpack(codec: Codec, file: &[u8], chunk: &[u8]) -> Option<Piece> {
    match codec {
        Codec::Gzip => {
            let body = file.strip_prefix(&GZIP_HEADER[..])?;
            let mut trailer = DEFLATE_END.to_vec();
            trailer.extend_from_slice(&crc32fast::hash(chunk).to_le_bytes());
            trailer.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            let body = body.strip_suffix(&trailer[..])?;
            (inflate(body, chunk.len()).as_deref() == Some(chunk)).then(|| Piece {
                bytes: body.to_vec(),
                unpadded: 0,
            })
        }
        Codec::Xz => {
            let block = file.get(12..)?;
            let header_len = (usize::from(*block.first()?) + 1) * 4;
            if block.get(1) != Some(&0xc0) {
                return None;
            }
            let (compressed, _) = varint(block.get(2..header_len)?)?;
            let compressed = usize::try_from(compressed).ok()?;
            let unpadded = header_len.checked_add(compressed)?.checked_add(4)?;
            let padded = header_len + compressed.next_multiple_of(4) + 4;
            let block = block.get(..padded)?;
            let mut expected = xz_format::stream_header();
            expected.extend_from_slice(block);
            expected.extend_from_slice(&xz_format::stream_end(&[(
                unpadded as u64,
                chunk.len() as u64,
            )]));
            if expected != file {
                return None;
            }
            let mut out = Vec::with_capacity(chunk.len());
            liblzma::read::XzDecoder::new(file)
                .take(chunk.len() as u64 + 1)
                .read_to_end(&mut out)
                .ok()?;
            (out == chunk).then(|| Piece {
                bytes: block.to_vec(),
                unpadded: unpadded as u64,
            })
        }
    }
}

/// xz's variable-length integer at the start of `bytes`, and its length.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate().take(9) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

/// What the raw deflate `piece` decodes to, at most `limit` + 1 bytes of it; `None` when it
/// does not decode.
fn inflate(piece: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(limit + 1);
    loop {
        let consumed = d.total_in() as usize;
        let before = (d.total_in(), d.total_out());
        d.decompress_vec(&piece[consumed..], &mut out, FlushDecompress::Sync)
            .ok()?;
        if d.total_in() as usize == piece.len() && out.len() < out.capacity() {
            return Some(out);
        }
        if out.len() > limit
            || (d.total_in(), d.total_out()) == before && out.len() < out.capacity()
        {
            return None;
        }
        out.reserve(out.capacity().max(1024));
    }
}

/// `chunk` as a gzip file: header, one deflate run at level 9 ending with a sync flush
/// (byte-aligned, not final), the final empty block, CRC-32 and size.
fn gzip_file(chunk: &[u8]) -> Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::best(), false);
    let mut out = GZIP_HEADER.to_vec();
    out.reserve(chunk.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let consumed = c.total_in() as usize;
        c.compress_vec(&chunk[consumed..], &mut out, FlushCompress::Sync)
            .context("deflating an index")?;
        // All input taken and room left over: the flush is complete.
        if c.total_in() as usize == chunk.len() && out.len() < out.capacity() {
            break;
        }
    }
    out.extend_from_slice(&DEFLATE_END);
    out.extend_from_slice(&crc32fast::hash(chunk).to_le_bytes());
    out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    Ok(out)
}

/// `chunk` as an xz file of one block: header (both sizes, the LZMA2 filter), LZMA2 data
/// with a dictionary no larger than the chunk, padding, CRC32 of the chunk; index; footer.
fn xz_file(chunk: &[u8]) -> Result<Vec<u8>> {
    let dict = xz_format::dict_size_for(chunk.len(), XZ_MAX_DICT);
    let data = xz_format::lzma2(chunk, XZ_PRESET, dict).context("compressing an index with xz")?;
    let mut out = xz_format::stream_header();
    let record = xz_format::write_block(&data, dict, chunk, &mut out);
    out.extend_from_slice(&xz_format::stream_end(&[record]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn stanzas(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let key = format!("pool/main/b/bench{i:04}/bench{i:04}_1.0-1_amd64.deb");
                let text = format!(
                    "Package: bench{i:04}\nVersion: 1.0-1\nArchitecture: amd64\n\
                     Filename: {key}\nSHA256: {:x}\n\n",
                    Sha256::digest(key.as_bytes())
                );
                (key, text)
            })
            .collect()
    }

    fn text_of(units: &[(String, String)]) -> IndexText {
        IndexText::new(
            "<header packages=\"n\">\n",
            units.iter().map(|(k, t)| (k.as_str(), t.as_str())),
            "</footer>\n",
        )
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        // A single-member decoder: the chunks must form one member.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn unxz(xz: &[u8]) -> Vec<u8> {
        // A single-stream decoder: the chunks must form one stream.
        let mut out = Vec::new();
        let stream = liblzma::stream::Stream::new_stream_decoder(u64::MAX, 0).unwrap();
        liblzma::read::XzDecoder::new_stream(xz, stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn repo() -> (tempfile::TempDir, RepoDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RepoDir::open(tmp.path(), false).unwrap().unwrap();
        (tmp, dir)
    }

    #[test]
    fn chunked_gzip_and_xz_decode_to_the_text() {
        let (_tmp, dir) = repo();
        let cache = Cache::new(&dir);
        for n in [0, 1, 5, 300] {
            let text = text_of(&stanzas(n));
            let plain = text.to_bytes();
            assert_eq!(gunzip(&cache.gzip(&text).unwrap()), plain);
            assert_eq!(unxz(&cache.xz(&text).unwrap()), plain);
        }
    }

    #[test]
    fn adding_one_package_changes_few_chunks_and_cuts_follow_the_content() {
        let all = stanzas(2000);
        let mut without = all.clone();
        without.remove(1234);
        let (a, b) = (text_of(&all), text_of(&without));
        assert!(a.chunks.len() > 10, "{} chunks", a.chunks.len());
        let changed = a.chunks.iter().filter(|c| !b.chunks.contains(c)).count();
        assert!(changed <= 2, "{changed} chunks changed");
        assert_eq!(text_of(&all).chunks, a.chunks);
    }

    #[test]
    fn cached_files_are_plain_gzip_and_xz_and_change_no_byte() {
        let (tmp, dir) = repo();
        let text = text_of(&stanzas(500));
        let cold = Cache::new(&dir);
        let (gz, xz) = (cold.gzip(&text).unwrap(), cold.xz(&text).unwrap());
        let mut batch = Batch::new(&dir).unwrap();
        cold.stage(&mut batch).unwrap();
        batch.commit().unwrap();
        let files = std::fs::read_dir(tmp.path().join(CACHE_DIR))
            .unwrap()
            .count();
        assert_eq!(files, 2 * text.chunks.len());
        // Each file is a whole gzip or xz file of the text its name hashes.
        for entry in std::fs::read_dir(tmp.path().join(CACHE_DIR)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let plain = if path.extension().unwrap() == "gz" {
                gunzip(&bytes)
            } else {
                unxz(&bytes)
            };
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(hex::encode(Sha256::digest(&plain)), name);
        }
        let warm = Cache::new(&dir);
        assert_eq!(warm.gzip(&text).unwrap(), gz);
        assert_eq!(warm.xz(&text).unwrap(), xz);
        assert!(
            warm.made.lock().unwrap().is_empty(),
            "the cache was not used"
        );
    }

    #[test]
    fn a_cache_file_that_does_not_decode_to_its_text_is_not_used() {
        let (tmp, dir) = repo();
        let units = stanzas(40);
        let text = text_of(&units);
        let cold = Cache::new(&dir);
        let (gz, xz) = (cold.gzip(&text).unwrap(), cold.xz(&text).unwrap());
        let mut batch = Batch::new(&dir).unwrap();
        cold.stage(&mut batch).unwrap();
        batch.commit().unwrap();
        // Every cached file replaced by the compressed form of another text (what a planted
        // file would be), or damaged.
        let other = gzip_file(b"Package: evil\n\n").unwrap();
        let other_xz = xz_file(b"Package: evil\n\n").unwrap();
        for (i, entry) in std::fs::read_dir(tmp.path().join(CACHE_DIR))
            .unwrap()
            .enumerate()
        {
            let path = entry.unwrap().path();
            let bytes = match (path.extension().unwrap() == "gz", i % 2) {
                (true, _) => other.clone(),
                (false, 0) => other_xz.clone(),
                (false, _) => {
                    let mut bytes = std::fs::read(&path).unwrap();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x10;
                    bytes
                }
            };
            std::fs::write(&path, bytes).unwrap();
        }
        let warm = Cache::new(&dir);
        assert_eq!(warm.gzip(&text).unwrap(), gz);
        assert_eq!(warm.xz(&text).unwrap(), xz);
        assert_eq!(warm.made.lock().unwrap().len(), 2 * text.chunks.len());
        // A gzip bomb in place of a cache file is read no further than the text's length.
        assert!(inflate(&gzip_file(&vec![0u8; 1 << 20]).unwrap()[10..], 100).is_none());
    }

    #[test]
    fn chunked_indexes_stay_close_to_whole_file_compression() {
        let text = text_of(&stanzas(1000));
        let plain = text.to_bytes();
        let (_tmp, dir) = repo();
        let cache = Cache::new(&dir);
        let whole_xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let whole_gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&plain).unwrap();
            e.finish().unwrap()
        };
        let (gz, xz) = (cache.gzip(&text).unwrap(), cache.xz(&text).unwrap());
        assert!(
            gz.len() * 100 <= whole_gz.len() * 110,
            "{} vs {}",
            gz.len(),
            whole_gz.len()
        );
        assert!(
            xz.len() * 100 <= whole_xz.len() * 125,
            "{} vs {}",
            xz.len(),
            whole_xz.len()
        );
    }
}
