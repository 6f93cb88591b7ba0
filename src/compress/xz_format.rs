//! The .xz container (file format 1.1.0) around raw LZMA2 data, shared by the parallel xz
//! encoder ([`super::xz`]) and the repository's chunked indexes (`crate::repo`): stream
//! header, blocks (header with both sizes, data, padding, CRC32 check), index, stream footer.

use std::io;

use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};

/// xz stream flags: check type CRC32.
const FLAGS: [u8; 2] = [0x00, 0x01];
/// LZMA2's filter id.
const LZMA2_ID: u8 = 0x21;

/// The stream header: magic, flags (CRC32 checks), CRC32 of the flags.
pub fn stream_header() -> Vec<u8> {
    let mut out = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    out.extend_from_slice(&FLAGS);
    out.extend_from_slice(&crc32(&FLAGS).to_le_bytes());
    out
}

/// The index of the blocks whose records (unpadded size, uncompressed size) are `records`,
/// and the stream footer.
pub fn stream_end(records: &[(u64, u64)]) -> Vec<u8> {
    let mut index = vec![0x00];
    varint(records.len() as u64, &mut index);
    for (unpadded, uncompressed) in records {
        varint(*unpadded, &mut index);
        varint(*uncompressed, &mut index);
    }
    pad4(&mut index);
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    let mut footer = Vec::with_capacity(12);
    footer.extend_from_slice(&((index.len() / 4 - 1) as u32).to_le_bytes());
    footer.extend_from_slice(&FLAGS);
    let mut out = index;
    out.extend_from_slice(&crc32(&footer).to_le_bytes());
    out.extend_from_slice(&footer);
    out.extend_from_slice(b"YZ");
    out
}

/// Raw LZMA2 data of `bytes` at `preset` with a dictionary of `dict` bytes.
pub fn lzma2(bytes: &[u8], preset: u32, dict: usize) -> io::Result<Vec<u8>> {
    let mut options = LzmaOptions::new_preset(preset).map_err(io::Error::other)?;
    options.dict_size(dict as u32);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let mut stream = Stream::new_raw_encoder(&filters).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(bytes.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = stream.total_in() as usize;
        match stream
            .process_vec(&bytes[consumed..], &mut out, Action::Finish)
            .map_err(io::Error::other)?
        {
            Status::StreamEnd => return Ok(out),
            _ => continue,
        }
    }
}

/// The smallest dictionary LZMA2 can describe that covers `len` bytes, at most `max` and
/// at least liblzma's minimum of 4 KiB.
pub fn dict_size_for(len: usize, max: usize) -> usize {
    let wanted = len.clamp(4096, max);
    (0..=40)
        .map(dict_from_prop)
        .find(|&d| d >= wanted)
        .unwrap_or(max)
}

/// The dictionary size LZMA2's property byte `prop` stands for.
pub fn dict_from_prop(prop: u8) -> usize {
    (2 | (prop as usize & 1)) << (prop / 2 + 11)
}

/// LZMA2's property byte for dictionary size `dict` (one [`dict_size_for`] returned).
pub fn prop_for_dict(dict: usize) -> u8 {
    (0..=40).find(|&p| dict_from_prop(p) >= dict).unwrap_or(40)
}

/// Appends one xz block holding `lzma2` (the LZMA2 data of `uncompressed`, made with a
/// dictionary of `dict` bytes) to `out`; returns its index record.
pub fn write_block(
    lzma2: &[u8],
    dict: usize,
    uncompressed: &[u8],
    out: &mut Vec<u8>,
) -> (u64, u64) {
    let mut header = vec![0x00, 0xc0]; // size (filled in below); flags: both sizes, one filter
    varint(lzma2.len() as u64, &mut header);
    varint(uncompressed.len() as u64, &mut header);
    header.extend_from_slice(&[LZMA2_ID, 0x01, prop_for_dict(dict)]);
    while !header.len().is_multiple_of(4) {
        header.push(0);
    }
    header[0] = ((header.len() + 4) / 4 - 1) as u8;
    let crc = crc32(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(lzma2);
    let start = out.len() - lzma2.len();
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(&crc32(uncompressed).to_le_bytes());
    let unpadded = header.len() + lzma2.len() + 4;
    (unpadded as u64, uncompressed.len() as u64)
}

/// xz's variable-length integer.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Pads `buf` with zeros to a multiple of four bytes.
fn pad4(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_sizes_are_describable() {
        let max = 6 << 20;
        assert_eq!(dict_from_prop(22), 8 << 20);
        assert_eq!(dict_size_for(max, max), max);
        assert_eq!(prop_for_dict(8 << 20), 22);
        assert!(dict_size_for(10_000, max) >= 10_000);
        assert_eq!(dict_size_for(1, max), 4096);
    }

    #[test]
    fn a_stream_of_blocks_decodes_whole() {
        let parts: [&[u8]; 3] = [b"first block\n", b"", b"third, after an empty one\n"];
        let mut out = stream_header();
        let mut records = Vec::new();
        for part in parts {
            let dict = dict_size_for(part.len(), 1 << 20);
            records.push(write_block(
                &lzma2(part, 6, dict).unwrap(),
                dict,
                part,
                &mut out,
            ));
        }
        out.extend_from_slice(&stream_end(&records));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&out[..]), &mut back)
            .unwrap();
        assert_eq!(back, parts.concat());
    }
}
