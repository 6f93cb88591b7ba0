//! Index compression whose cost follows what changed, not what the repository holds.
//!
//! An index text (`Packages`, `primary.xml`, ...) is built as a [`ChunkedText`]: a sequence of
//! chunks cut after a package whose key hashes low enough (so about every [`TARGET`] bytes).
//! Where a cut falls depends only on that package, so adding or removing one package changes
//! the chunk it belongs to and moves no other cut. Each chunk is compressed on its own: as a
//! deflate run that ends byte-aligned and may refer back into the 32 KiB before it (the
//! chunks of an index then form one gzip member, as `pigz` writes it), and as one xz block
//! (the chunks form one xz stream with one block each). [`ChunkCache`] keeps the compressed
//! chunks between runs in `.mm-pkg/index-chunks`, keyed by the SHA-256 of what they depend
//! on, so a run compresses only chunks it has not seen (for gzip, also the one after a
//! changed chunk). The bytes written depend only on the index text, never on what the cache
//! held: the same packages give the same indexes.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use flate2::{Compress, FlushCompress};
use sha2::{Digest, Sha256};

use crate::compress::xz_format;

use super::files::{Batch, PRIVATE_DIR};

/// Uncompressed bytes a chunk holds on average.
pub const TARGET: usize = 32 * 1024;
/// The cache file under [`PRIVATE_DIR`].
const CACHE_FILE: &str = "index-chunks";
/// First bytes of the cache file; a new compression setting needs a new one.
const MAGIC: &[u8] = b"mm-pkg index chunks 2 (deflate 9 primed, lzma2 6, crc32)\n";
/// xz preset of each block.
const XZ_PRESET: u32 = 6;
/// Largest LZMA2 dictionary (preset 6's).
const XZ_MAX_DICT: usize = 8 << 20;
/// How far back a deflate stream refers.
const WINDOW: usize = 32 * 1024;
/// gzip member header: no name, no time stamp, maximum compression, Unix.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
/// The final, empty deflate block (fixed Huffman, end of block) that closes a gzip member.
const DEFLATE_END: [u8; 2] = [0x03, 0x00];

/// An index text as chunks that are compressed one by one.
#[derive(Debug, Default)]
pub struct ChunkedText {
    chunks: Vec<Vec<u8>>,
    /// Whether the last chunk takes more units.
    open: bool,
    /// SHA-256 of each chunk, computed once (both codecs key their pieces by it).
    hashes: OnceLock<Vec<[u8; 32]>>,
}

impl ChunkedText {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` as a chunk of their own (a header or footer that changes with the
    /// number of packages).
    pub fn push_alone(&mut self, bytes: &[u8]) {
        self.chunks.push(bytes.to_vec());
        self.open = false;
        self.hashes = OnceLock::new();
    }

    /// Appends one package's `bytes`; the chunk ends after them when `key` (what identifies
    /// the package) and their length say so.
    pub fn push(&mut self, key: &str, bytes: &[u8]) {
        match self.chunks.last_mut() {
            Some(last) if self.open => last.extend_from_slice(bytes),
            _ => self.chunks.push(bytes.to_vec()),
        }
        self.open = !cut_after(key, bytes.len());
        self.hashes = OnceLock::new();
    }

    /// SHA-256 of each chunk.
    fn hashes(&self) -> &[[u8; 32]] {
        self.hashes.get_or_init(|| {
            self.chunks
                .iter()
                .map(|c| Sha256::digest(c).into())
                .collect()
        })
    }

    /// The whole text.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// Bytes of the whole text.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    /// True when the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `bytes` are the whole text, chunk by chunk.
    fn is(&self, bytes: &[u8]) -> bool {
        bytes.len() == self.len() && {
            let mut rest = bytes;
            self.chunks.iter().all(|c| {
                let (head, tail) = rest.split_at(c.len());
                rest = tail;
                head == &c[..]
            })
        }
    }
}

/// Whether a chunk ends after a unit of `len` bytes identified by `key`: with probability
/// `len / TARGET` (always for a unit of `TARGET` bytes or more), decided by `key`'s hash.
fn cut_after(key: &str, len: usize) -> bool {
    let digest = Sha256::digest(key.as_bytes());
    let h = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as u128;
    h * (TARGET as u128) < (len as u128) << 32
}

/// Which compression a cached chunk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// A deflate run ending byte-aligned, not final.
    Deflate = b'g' as isize,
    /// One xz block (header, LZMA2 data, padding, CRC32 of the text).
    Xz = b'x' as isize,
}

/// One compressed chunk.
#[derive(Debug, Clone)]
struct Piece {
    bytes: Vec<u8>,
    /// For an xz block: its unpadded size (as the xz index records it); 0 for deflate.
    unpadded: u64,
}

type Key = (Kind, [u8; 32]);

/// Compressed chunks of earlier runs, and the ones this run uses. An xz block is keyed by the
/// SHA-256 of its text; a deflate chunk by that of its text and of the chunks within 32 KiB
/// before it (which it may refer to).
pub struct ChunkCache {
    path: PathBuf,
    known: HashMap<Key, Arc<Piece>>,
    used: Mutex<BTreeMap<Key, Arc<Piece>>>,
}

impl ChunkCache {
    /// The cache of the repository at `dir`; empty when there is none or it is damaged (a run
    /// killed while it was written): it only saves work.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(PRIVATE_DIR).join(CACHE_FILE);
        let known = std::fs::read(&path)
            .ok()
            .and_then(|bytes| parse(&bytes))
            .unwrap_or_default();
        ChunkCache {
            path,
            known,
            used: Mutex::new(BTreeMap::new()),
        }
    }

    /// `text` as one gzip member. The result is decoded and compared with `text` before it
    /// is returned: a cache entry that is wrong (damaged in a way its checksum missed, or
    /// written by hand) is replaced by a fresh compression, never published.
    pub fn gzip(&self, text: &ChunkedText) -> Result<Vec<u8>> {
        self.checked(
            text,
            |cached| self.gzip_with(text, cached),
            |bytes, back| flate2::read::GzDecoder::new(bytes).read_to_end(back),
        )
    }

    /// `text` as one gzip member, from cached chunks when `cached`.
    fn gzip_with(&self, text: &ChunkedText, cached: bool) -> Result<Vec<u8>> {
        let mut out = GZIP_HEADER.to_vec();
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let hashes = text.hashes();
        for (i, chunk) in text.chunks.iter().enumerate() {
            // The chunks before this one that deflate still sees (32 KiB back) as it decodes.
            let mut first = i;
            let mut seen = 0;
            while first > 0 && seen < WINDOW {
                first -= 1;
                seen += text.chunks[first].len();
            }
            let window = || {
                let before = text.chunks[first..i].concat();
                before[before.len().saturating_sub(WINDOW)..].to_vec()
            };
            let piece = self.piece(Kind::Deflate, &hashes[first..=i], cached, || {
                deflate(&window(), chunk)
            })?;
            out.extend_from_slice(&piece.bytes);
            crc.update(chunk);
            size += chunk.len() as u64;
        }
        out.extend_from_slice(&DEFLATE_END);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&(size as u32).to_le_bytes());
        Ok(out)
    }

    /// `text` as one xz stream of one block per chunk, checked like [`Self::gzip`].
    pub fn xz(&self, text: &ChunkedText) -> Result<Vec<u8>> {
        self.checked(
            text,
            |cached| self.xz_with(text, cached),
            |bytes, back| liblzma::read::XzDecoder::new(bytes).read_to_end(back),
        )
    }

    /// `build(true)` (from cached chunks) when `decode` reads it back as `text`, else
    /// `build(false)` (every chunk compressed afresh, replacing the cached ones).
    fn checked(
        &self,
        text: &ChunkedText,
        build: impl Fn(bool) -> Result<Vec<u8>>,
        decode: impl Fn(&[u8], &mut Vec<u8>) -> std::io::Result<usize>,
    ) -> Result<Vec<u8>> {
        let out = build(true)?;
        let mut back = Vec::with_capacity(text.len());
        if decode(&out, &mut back).is_ok() && text.is(&back) {
            return Ok(out);
        }
        eprintln!(
            "mm-pkg: warning: {} held compressed index chunks that do not match the index; \
             compressing afresh (and replacing them)",
            self.path.display()
        );
        build(false)
    }

    /// `text` as one xz stream, from cached chunks when `cached`.
    fn xz_with(&self, text: &ChunkedText, cached: bool) -> Result<Vec<u8>> {
        let mut out = xz_format::stream_header();
        let mut records = Vec::with_capacity(text.chunks.len());
        for (chunk, hash) in text.chunks.iter().zip(text.hashes()) {
            let key = std::slice::from_ref(hash);
            let piece = self.piece(Kind::Xz, key, cached, || xz_block(chunk))?;
            out.extend_from_slice(&piece.bytes);
            records.push((piece.unpadded, chunk.len() as u64));
        }
        out.extend_from_slice(&xz_format::stream_end(&records));
        Ok(out)
    }

    /// Stages in `batch` the chunks this run used (and only those, so the file is the same
    /// whatever the history), for the next run.
    pub fn save(&self, batch: &mut Batch) -> Result<()> {
        let used = self.used.lock().expect("chunk cache lock");
        let mut out = MAGIC.to_vec();
        for ((kind, hash), piece) in used.iter() {
            out.push(*kind as u8);
            out.extend_from_slice(hash);
            out.extend_from_slice(&piece.unpadded.to_le_bytes());
            out.extend_from_slice(&(piece.bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&piece.bytes);
        }
        out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
        batch.write(&self.path, &out)?;
        Ok(())
    }

    /// A compressed chunk, from the cache or made now by `make`; `hashes` are those of the
    /// chunks it depends on (the chunk itself last).
    fn piece(
        &self,
        kind: Kind,
        hashes: &[[u8; 32]],
        use_cache: bool,
        make: impl FnOnce() -> Result<Piece>,
    ) -> Result<Arc<Piece>> {
        let key = match hashes {
            [one] => (kind, *one),
            many => (kind, Sha256::digest(many.concat()).into()),
        };
        let cached = use_cache
            .then(|| {
                self.known.get(&key).cloned().or_else(|| {
                    let used = self.used.lock().expect("chunk cache lock");
                    used.get(&key).cloned()
                })
            })
            .flatten();
        let piece = match cached {
            Some(piece) => piece,
            None => Arc::new(make()?),
        };
        let mut used = self.used.lock().expect("chunk cache lock");
        used.insert(key, Arc::clone(&piece));
        Ok(piece)
    }
}

/// The entries of a cache file; `None` when it is not one this version wrote whole.
fn parse(bytes: &[u8]) -> Option<HashMap<Key, Arc<Piece>>> {
    let body = bytes.strip_prefix(MAGIC)?;
    let (body, sum) = body.split_at_checked(body.len().checked_sub(4)?)?;
    if crc32fast::hash(&bytes[..bytes.len() - 4]).to_le_bytes() != sum {
        return None;
    }
    let mut map = HashMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at_checked(1 + 32 + 8 + 8)?;
        let kind = match head[0] {
            b'g' => Kind::Deflate,
            b'x' => Kind::Xz,
            _ => return None,
        };
        let hash: [u8; 32] = head[1..33].try_into().ok()?;
        let unpadded = u64::from_le_bytes(head[33..41].try_into().ok()?);
        let len = usize::try_from(u64::from_le_bytes(head[41..49].try_into().ok()?)).ok()?;
        let (piece, tail) = tail.split_at_checked(len)?;
        let piece = Piece {
            bytes: piece.to_vec(),
            unpadded,
        };
        map.insert((kind, hash), Arc::new(piece));
        rest = tail;
    }
    Some(map)
}

/// `chunk` deflated at level 9, ending with a sync flush (byte-aligned, not final); it may
/// refer back into `window`, the text the decoder has just produced before it.
fn deflate(window: &[u8], chunk: &[u8]) -> Result<Piece> {
    let mut c = Compress::new(flate2::Compression::best(), false);
    if !window.is_empty() {
        c.set_dictionary(window)
            .context("priming deflate with the text before")?;
    }
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let consumed = c.total_in() as usize;
        c.compress_vec(&chunk[consumed..], &mut out, FlushCompress::Sync)
            .context("deflating an index")?;
        // All input taken and room left over: the flush is complete.
        if c.total_in() as usize == chunk.len() && out.len() < out.capacity() {
            return Ok(Piece {
                bytes: out,
                unpadded: 0,
            });
        }
    }
}

/// `chunk` as one xz block: header (both sizes, the LZMA2 filter), LZMA2 data with a
/// dictionary no larger than the chunk, padding, CRC32 of the chunk.
fn xz_block(chunk: &[u8]) -> Result<Piece> {
    let dict = xz_format::dict_size_for(chunk.len(), XZ_MAX_DICT);
    let data = xz_format::lzma2(chunk, XZ_PRESET, dict).context("compressing an index with xz")?;
    let mut bytes = Vec::with_capacity(data.len() + 32);
    let (unpadded, _) = xz_format::write_block(&data, dict, chunk, &mut bytes);
    Ok(Piece { bytes, unpadded })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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

    fn text_of(units: &[(String, String)]) -> ChunkedText {
        let mut text = ChunkedText::new();
        text.push_alone(b"<header packages=\"n\">\n");
        for (key, unit) in units {
            text.push(key, unit.as_bytes());
        }
        text.push_alone(b"</footer>\n");
        text
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

    #[test]
    fn chunked_gzip_and_xz_decode_to_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::load(dir.path());
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
        // The same units give the same chunks, whatever came before.
        assert_eq!(text_of(&all).chunks, a.chunks);
    }

    #[test]
    fn the_cache_changes_no_byte_and_survives_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let text = text_of(&stanzas(500));
        let cold = ChunkCache::load(dir.path());
        let (gz, xz) = (cold.gzip(&text).unwrap(), cold.xz(&text).unwrap());
        let mut batch = Batch::new(dir.path()).unwrap();
        cold.save(&mut batch).unwrap();
        batch.commit().unwrap();
        let warm = ChunkCache::load(dir.path());
        assert!(!warm.known.is_empty(), "the cache was not read back");
        assert_eq!(warm.gzip(&text).unwrap(), gz);
        assert_eq!(warm.xz(&text).unwrap(), xz);
        // A damaged cache is ignored, not trusted.
        let path = dir.path().join(PRIVATE_DIR).join(CACHE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(ChunkCache::load(dir.path()).known.is_empty());
        std::fs::write(&path, &bytes[..100]).unwrap();
        assert!(ChunkCache::load(dir.path()).known.is_empty());
    }

    #[test]
    fn a_cached_piece_is_used_only_when_it_decodes_to_its_chunk() {
        // A cache entry that passes the CRC but holds another text's compression (a crafted
        // or stale `.mm-pkg/index-chunks`) must not reach the published indexes.
        let dir = tempfile::tempdir().unwrap();
        let text = text_of(&stanzas(3));
        let plain = text.to_bytes();
        let mut cache = ChunkCache::load(dir.path());
        let other = b"Package: evil\n\n".to_vec();
        for (i, hash) in text.hashes().iter().enumerate() {
            let xz = xz_block(&other).unwrap();
            cache.known.insert((Kind::Xz, *hash), Arc::new(xz));
            let deflated = deflate(&[], &other).unwrap();
            let key = if i == 0 {
                *hash
            } else {
                let mut first = i;
                let mut seen = 0;
                while first > 0 && seen < WINDOW {
                    first -= 1;
                    seen += text.chunks[first].len();
                }
                Sha256::digest(text.hashes()[first..=i].concat()).into()
            };
            cache.known.insert((Kind::Deflate, key), Arc::new(deflated));
        }
        assert_eq!(unxz(&cache.xz(&text).unwrap()), plain);
        assert_eq!(gunzip(&cache.gzip(&text).unwrap()), plain);
    }

    #[test]
    fn chunked_indexes_stay_close_to_whole_file_compression() {
        let text = text_of(&stanzas(1000));
        let plain = text.to_bytes();
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::load(dir.path());
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
            gz.len() * 100 <= whole_gz.len() * 103,
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
