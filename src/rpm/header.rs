//! RPM header structures: the index of tagged values and its data store, with the region
//! trailer that makes a header "immutable", as rpm reads and verifies them.
//!
//! Layout of one header: magic `8E AD E8 01`, 4 reserved bytes, the number of index entries
//! and the size of the data store (both big-endian u32), the index entries (tag, type, offset,
//! count; 16 bytes each) and the data store. The first entry is the region tag, whose data (a
//! 16-byte trailer at the end of the store) points back over the whole index.

use std::collections::BTreeMap;

/// Tag values used by mm-pkg's packages.
#[allow(missing_docs)]
pub mod tag {
    pub const HEADERSIGNATURES: u32 = 62;
    pub const HEADERIMMUTABLE: u32 = 63;
    pub const HEADERI18NTABLE: u32 = 100;
    pub const SIG_DSAHEADER: u32 = 267;
    pub const SIG_RSAHEADER: u32 = 268;
    pub const SIG_SHA1: u32 = 269;
    pub const SIG_LONGSIZE: u32 = 270;
    pub const SIG_LONGARCHIVESIZE: u32 = 271;
    pub const SIG_SHA256: u32 = 273;
    /// rpm 6's list of OpenPGP signatures (any number of keys, v4 or v6).
    pub const SIG_OPENPGP: u32 = 278;
    pub const SIG_SIZE: u32 = 1000;
    pub const SIG_PGP: u32 = 1002;
    pub const SIG_MD5: u32 = 1004;
    pub const SIG_GPG: u32 = 1005;
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const GROUP: u32 = 1016;
    pub const URL: u32 = 1020;
    pub const OS: u32 = 1021;
    pub const ARCH: u32 = 1022;
    pub const PREIN: u32 = 1023;
    pub const POSTIN: u32 = 1024;
    pub const PREUN: u32 = 1025;
    pub const POSTUN: u32 = 1026;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const FILERDEVS: u32 = 1033;
    pub const FILEMTIMES: u32 = 1034;
    pub const FILEDIGESTS: u32 = 1035;
    pub const FILELINKTOS: u32 = 1036;
    pub const FILEFLAGS: u32 = 1037;
    pub const FILEUSERNAME: u32 = 1039;
    pub const FILEGROUPNAME: u32 = 1040;
    pub const SOURCERPM: u32 = 1044;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const FILEVERIFYFLAGS: u32 = 1045;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const REQUIREVERSION: u32 = 1050;
    pub const CONFLICTFLAGS: u32 = 1053;
    pub const CONFLICTNAME: u32 = 1054;
    pub const CONFLICTVERSION: u32 = 1055;
    pub const RPMVERSION: u32 = 1064;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const PREINPROG: u32 = 1085;
    pub const POSTINPROG: u32 = 1086;
    pub const PREUNPROG: u32 = 1087;
    pub const POSTUNPROG: u32 = 1088;
    pub const OBSOLETENAME: u32 = 1090;
    pub const FILEDEVICES: u32 = 1095;
    pub const FILEINODES: u32 = 1096;
    pub const FILELANGS: u32 = 1097;
    pub const PROVIDEFLAGS: u32 = 1112;
    pub const PROVIDEVERSION: u32 = 1113;
    pub const OBSOLETEFLAGS: u32 = 1114;
    pub const OBSOLETEVERSION: u32 = 1115;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const PAYLOADFORMAT: u32 = 1124;
    pub const PAYLOADCOMPRESSOR: u32 = 1125;
    pub const PAYLOADFLAGS: u32 = 1126;
    pub const FILECAPS: u32 = 5010;
    pub const FILEDIGESTALGO: u32 = 5011;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const RECOMMENDVERSION: u32 = 5047;
    pub const RECOMMENDFLAGS: u32 = 5048;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUGGESTVERSION: u32 = 5050;
    pub const SUGGESTFLAGS: u32 = 5051;
    pub const ENCODING: u32 = 5062;
    pub const PAYLOADDIGEST: u32 = 5092;
    pub const PAYLOADDIGESTALGO: u32 = 5093;
    pub const PAYLOADDIGESTALT: u32 = 5097;
}

/// A typed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// INT16 array.
    Int16(Vec<u16>),
    /// INT32 array.
    Int32(Vec<u32>),
    /// INT64 array (`LONGSIZE` and the like, in packages over 4 GiB).
    Int64(Vec<u64>),
    /// One STRING.
    Str(String),
    /// BIN bytes.
    Bin(Vec<u8>),
    /// STRING_ARRAY.
    StrArray(Vec<String>),
    /// I18NSTRING (one locale, "C").
    I18n(String),
}

impl Value {
    fn kind(&self) -> u32 {
        match self {
            Value::Int16(_) => 3,
            Value::Int32(_) => 4,
            Value::Int64(_) => 5,
            Value::Str(_) => 6,
            Value::Bin(_) => 7,
            Value::StrArray(_) => 8,
            Value::I18n(_) => 9,
        }
    }

    fn alignment(&self) -> usize {
        match self {
            Value::Int16(_) => 2,
            Value::Int32(_) => 4,
            Value::Int64(_) => 8,
            _ => 1,
        }
    }

    fn count(&self) -> u32 {
        (match self {
            Value::Int16(v) => v.len(),
            Value::Int32(v) => v.len(),
            Value::Int64(v) => v.len(),
            Value::Str(_) | Value::I18n(_) => 1,
            Value::Bin(b) => b.len(),
            Value::StrArray(v) => v.len(),
        }) as u32
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Int32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Value::Str(s) | Value::I18n(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Value::Bin(b) => out.extend_from_slice(b),
            Value::StrArray(v) => {
                for s in v {
                    out.extend_from_slice(s.as_bytes());
                    out.push(0);
                }
            }
        }
    }
}

/// A header under construction: tags and values, serialised in tag order.
#[derive(Debug, Clone, Default)]
pub struct Header {
    entries: BTreeMap<u32, Value>,
}

impl Header {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `tag` to `value` (replacing an earlier value).
    pub fn set(&mut self, tag: u32, value: Value) -> &mut Self {
        self.entries.insert(tag, value);
        self
    }

    /// Removes `tag` if present.
    pub fn remove(&mut self, tag: u32) -> &mut Self {
        self.entries.remove(&tag);
        self
    }

    /// Serialises the header as an immutable region tagged `region_tag`
    /// ([`tag::HEADERIMMUTABLE`] for the main header, [`tag::HEADERSIGNATURES`] for the
    /// signature header).
    pub fn to_bytes(&self, region_tag: u32) -> Vec<u8> {
        let count = self.entries.len() as u32 + 1;
        let mut index = Vec::with_capacity(count as usize * 16);
        let mut store = Vec::new();
        for (tag, value) in &self.entries {
            let align = value.alignment();
            while store.len() % align != 0 {
                store.push(0);
            }
            push_entry(
                &mut index,
                *tag,
                value.kind(),
                store.len() as u32,
                value.count(),
            );
            value.write(&mut store);
        }
        // The region trailer: a copy of an index entry whose negative offset spans the index.
        let trailer_offset = store.len() as u32;
        let mut trailer = Vec::with_capacity(16);
        push_entry(
            &mut trailer,
            region_tag,
            7,
            (-(count as i32 * 16)) as u32,
            16,
        );
        store.extend_from_slice(&trailer);

        let mut out = Vec::with_capacity(16 + 16 * count as usize + store.len());
        out.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        push_entry(&mut out, region_tag, 7, trailer_offset, 16);
        out.extend_from_slice(&index);
        out.extend_from_slice(&store);
        out
    }
}

fn push_entry(out: &mut Vec<u8>, tag: u32, kind: u32, offset: u32, count: u32) {
    for v in [tag, kind, offset, count] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// The 96-byte lead that starts every RPM file (only its magic and name still matter).
pub fn lead(name_version_release: &str) -> [u8; 96] {
    let mut lead = [0u8; 96];
    lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    lead[4] = 3; // major
    lead[5] = 0; // minor
    // type 0 (binary), archnum 1
    lead[8..10].copy_from_slice(&1u16.to_be_bytes());
    let name = name_version_release.as_bytes();
    let n = name.len().min(65);
    lead[10..10 + n].copy_from_slice(&name[..n]);
    lead[76..78].copy_from_slice(&1u16.to_be_bytes()); // osnum: Linux
    lead[78..80].copy_from_slice(&5u16.to_be_bytes()); // signature type: header-style
    lead
}

/// Zero bytes that pad a signature header to a multiple of 8.
pub fn signature_padding(header_len: usize) -> usize {
    (8 - header_len % 8) % 8
}
