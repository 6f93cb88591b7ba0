//! Index compression whose cost follows what changed, not what the repository holds.
//!
//! An index text (`Packages`, `primary.xml`, ...) is built as a [`ChunkedText`]: a sequence of
//! chunks, one per segment of the repository ([`super::segments`]), each cut after a package
//! whose key hashes low enough ([`cut_after`], so about every [`TARGET`] bytes, between
//! [`MIN`] and [`MAX`]). Where a cut falls depends only on that package and the bytes since
//! the cut before, so adding or removing one package changes the chunk it belongs to and
//! moves few other cuts. Each chunk is compressed on its own: as a deflate run
//! that ends byte-aligned and may refer back into the 32 KiB before it, never into a header
//! (the chunks of an index then form one gzip member, as `pigz` writes it), and as one xz
//! block (the chunks form one xz stream with one block each). [`ChunkCache`] keeps the
//! compressed chunks between runs in `.mm-pkg/index-chunks`, keyed by the SHA-256 of what
//! they depend on, so a run compresses only chunks it has not seen (for gzip, also the one
//! after a changed chunk). The bytes written depend only on the index text, never on what
//! the cache held: the same packages give the same indexes. Each piece is decoded and
//! compared with its chunk when it is made; the cache file carries a checksum, so a damaged
//! one is not read. The cache is trusted as the rest of `.mm-pkg` is (segment texts come
//! from there too): only whoever runs `repo add` may write it.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use sha2::{Digest, Sha256};

use crate::compress::xz_format;

use super::files::{self, PRIVATE_DIR};

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
    /// SHA-256 of each chunk (both codecs key their pieces by it).
    hashes: Vec<[u8; 32]>,
    /// Whether the deflate run of a later chunk may refer back into each chunk.
    referable: Vec<bool>,
}

impl ChunkedText {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` as a chunk of their own (a header or footer that changes with the
    /// number of packages). Later chunks do not refer back into it, so that a new count
    /// recompresses only the header, not the packages after it.
    pub fn push_alone(&mut self, bytes: &[u8]) {
        self.push_chunk(bytes.to_vec(), Sha256::digest(bytes).into());
        self.referable.pop();
        self.referable.push(false);
    }

    /// Appends a chunk whose SHA-256 is known (a segment's text, hashed when the segment was
    /// made and kept under the segment file's checksum). The compressed pieces are keyed by
    /// it, so it must be the hash of `bytes`.
    pub fn push_chunk(&mut self, bytes: Vec<u8>, sha256: [u8; 32]) {
        self.chunks.push(bytes);
        self.hashes.push(sha256);
        self.referable.push(true);
    }

    /// Appends the chunks of `other`.
    pub fn append(&mut self, other: ChunkedText) {
        self.chunks.extend(other.chunks);
        self.hashes.extend(other.hashes);
        self.referable.extend(other.referable);
    }

    /// SHA-256 of each chunk.
    fn hashes(&self) -> &[[u8; 32]] {
        &self.hashes
    }

    /// The whole text.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// SHA-256 of the whole text, hashed chunk by chunk.
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

/// Smallest chunk (bytes of its largest text) that [`cut_after`] ends, unless it is the last.
pub const MIN: usize = TARGET / 2;
/// Largest chunk [`cut_after`] lets grow, unless one unit alone is larger.
pub const MAX: usize = TARGET * 2;

/// Whether a chunk ends after a unit of `len` bytes identified by `key`, `so_far` bytes into
/// the chunk (the unit included): never before [`MIN`] bytes, always from [`MAX`] on, and in
/// between with probability `len / (TARGET - MIN)` (so about every [`TARGET`] bytes), decided
/// by `key`'s hash. Bounded chunks bound what one change recompresses: a package lands in a
/// large chunk more often than in a small one.
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

    /// `text` as one gzip member, from cached pieces where it can.
    pub fn gzip(&self, text: &ChunkedText) -> Result<Vec<u8>> {
        let mut out = GZIP_HEADER.to_vec();
        let mut crc = crc32fast::Hasher::new();
        let mut size = 0u64;
        let hashes = text.hashes();
        for (i, chunk) in text.chunks.iter().enumerate() {
            // The chunks before this one that deflate still sees (32 KiB back) as it decodes.
            let mut first = i;
            let mut seen = 0;
            while first > 0 && seen < WINDOW && text.referable[first - 1] {
                first -= 1;
                seen += text.chunks[first].len();
            }
            let piece = self.piece(Kind::Deflate, &hashes[first..=i], || {
                let before = text.chunks[first..i].concat();
                let window = &before[before.len().saturating_sub(WINDOW)..];
                let piece = deflate(window, chunk)?;
                check(inflate(window, &piece.bytes).as_deref() == Some(chunk))?;
                Ok(piece)
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

    /// `text` as one xz stream of one block per chunk, from cached blocks where it can.
    pub fn xz(&self, text: &ChunkedText) -> Result<Vec<u8>> {
        let mut out = xz_format::stream_header();
        let mut records = Vec::with_capacity(text.chunks.len());
        for (chunk, hash) in text.chunks.iter().zip(text.hashes()) {
            let piece = self.piece(Kind::Xz, std::slice::from_ref(hash), || {
                let piece = xz_block(chunk)?;
                check(unxz_block(&piece, chunk.len()).as_deref() == Some(chunk))?;
                Ok(piece)
            })?;
            out.extend_from_slice(&piece.bytes);
            records.push((piece.unpadded, chunk.len() as u64));
        }
        out.extend_from_slice(&xz_format::stream_end(&records));
        Ok(out)
    }

    /// Keeps for the next run the chunks this run used (and only those, so the file is the
    /// same whatever the history), in the repository at `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
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
        files::replace_cache(dir, &self.path, &out)?;
        Ok(())
    }

    /// A compressed chunk, from the cache or made now by `make`; `hashes` are those of the
    /// chunks it depends on (the chunk itself last).
    fn piece(
        &self,
        kind: Kind,
        hashes: &[[u8; 32]],
        make: impl FnOnce() -> Result<Piece>,
    ) -> Result<Arc<Piece>> {
        let key = match hashes {
            [one] => (kind, *one),
            many => (kind, Sha256::digest(many.concat()).into()),
        };
        let cached = self.known.get(&key).cloned().or_else(|| {
            let used = self.used.lock().expect("chunk cache lock");
            used.get(&key).cloned()
        });
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

/// Fails when a piece just made does not decode to its chunk (a fault in the compressor or
/// its framing: nothing that reads the repository could use it).
fn check(decodes: bool) -> Result<()> {
    if !decodes {
        bail!("a compressed index chunk does not decode to its text: please report this");
    }
    Ok(())
}

/// The text a deflate piece decodes to after `window`; `None` when it does not decode.
fn inflate(window: &[u8], piece: &[u8]) -> Option<Vec<u8>> {
    let mut d = Decompress::new(false);
    if !window.is_empty() {
        d.set_dictionary(window).ok()?;
    }
    let mut out = Vec::with_capacity(piece.len() * 4 + 1024);
    loop {
        let consumed = d.total_in() as usize;
        let before = (d.total_in(), d.total_out());
        d.decompress_vec(&piece[consumed..], &mut out, FlushDecompress::Sync)
            .ok()?;
        if d.total_in() as usize == piece.len() && out.len() < out.capacity() {
            return Some(out);
        }
        if (d.total_in(), d.total_out()) == before && out.len() < out.capacity() {
            return None;
        }
        out.reserve(out.capacity());
    }
}

/// The text an xz block decodes to, read as the one block of a stream; `None` when it does
/// not decode.
fn unxz_block(piece: &Piece, len: usize) -> Option<Vec<u8>> {
    let mut stream = xz_format::stream_header();
    stream.extend_from_slice(&piece.bytes);
    stream.extend_from_slice(&xz_format::stream_end(&[(piece.unpadded, len as u64)]));
    let mut out = Vec::with_capacity(len);
    liblzma::read::XzDecoder::new(&stream[..])
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
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

    /// The units cut into chunks as the repository's segments are.
    fn text_of(units: &[(String, String)]) -> ChunkedText {
        let mut text = ChunkedText::new();
        text.push_alone(b"<header packages=\"n\">\n");
        let mut chunk = Vec::new();
        for (key, unit) in units {
            chunk.extend_from_slice(unit.as_bytes());
            if cut_after(key, unit.len(), chunk.len()) {
                let chunk = std::mem::take(&mut chunk);
                let sha = Sha256::digest(&chunk).into();
                text.push_chunk(chunk, sha);
            }
        }
        if !chunk.is_empty() {
            let sha = Sha256::digest(&chunk).into();
            text.push_chunk(chunk, sha);
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
        std::fs::create_dir_all(dir.path().join(PRIVATE_DIR).join("tmp")).unwrap();
        cold.save(dir.path()).unwrap();
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
    fn a_new_header_recompresses_only_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::load(dir.path());
        let body = text_of(&stanzas(300));
        let with_header = |head: &[u8]| {
            let mut text = ChunkedText::new();
            text.push_alone(head);
            text.chunks.extend(body.chunks.iter().cloned());
            text.hashes.extend(body.hashes.iter().cloned());
            text.referable.extend(body.referable.iter().cloned());
            text
        };
        let (one, two) = (with_header(b"<h n=\"1\">\n"), with_header(b"<h n=\"2\">\n"));
        let gz = cache.gzip(&one).unwrap();
        let before = cache.used.lock().unwrap().len();
        let gz2 = cache.gzip(&two).unwrap();
        assert_eq!(cache.used.lock().unwrap().len(), before + 1);
        assert_eq!(gunzip(&gz), one.to_bytes());
        assert_eq!(gunzip(&gz2), two.to_bytes());
    }

    #[test]
    fn pieces_are_checked_as_they_are_made() {
        // What a new piece is checked with tells its own chunk from any other text.
        let units = stanzas(40);
        let (window, chunk) = (units[0].1.repeat(200), units[1].1.as_bytes());
        let piece = deflate(window.as_bytes(), chunk).unwrap();
        assert_eq!(
            inflate(window.as_bytes(), &piece.bytes).as_deref(),
            Some(chunk)
        );
        assert_ne!(inflate(b"", &piece.bytes).as_deref(), Some(chunk));
        let other = deflate(window.as_bytes(), units[2].1.as_bytes()).unwrap();
        assert_ne!(
            inflate(window.as_bytes(), &other.bytes).as_deref(),
            Some(chunk)
        );

        let block = xz_block(chunk).unwrap();
        assert_eq!(unxz_block(&block, chunk.len()).as_deref(), Some(chunk));
        let other = xz_block(units[2].1.as_bytes()).unwrap();
        assert_ne!(unxz_block(&other, chunk.len()).as_deref(), Some(chunk));
        let mut damaged = block.clone();
        let middle = damaged.bytes.len() / 2;
        damaged.bytes[middle] ^= 0x10;
        assert_ne!(unxz_block(&damaged, chunk.len()).as_deref(), Some(chunk));
        assert!(check(false).is_err() && check(true).is_ok());
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
