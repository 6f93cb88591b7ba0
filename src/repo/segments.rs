//! The packages a repository holds, kept in segments so that adding one reads, renders and
//! writes about one segment, whatever the repository holds.
//!
//! The packages of one index (an apt component and architecture, or the yum repository) are
//! a [`Family`]: sorted as the index lists them (name, then location) and cut into segments
//! after each package for which [`cut_after`] says so (about every [`TARGET`] bytes of
//! index text). A cut depends only on its package and the bytes since the cut before, so a
//! change re-cuts the segment it falls in and, at most, the next few, until the cuts meet
//! the old ones again. Each segment is one file under `.mm-pkg/segments/`, named by
//! its SHA-256 and never changed: its packages' index texts (what `Packages`, or `primary`,
//! `filelists` and `other`, say of them) with their SHA-256, then the packages themselves
//! (what rendered the texts). A run reads the texts of every segment (the indexes list every
//! package) but parses and renders only the segments that change.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chunks::{TARGET, cut_after};
use super::files::{Batch, PRIVATE_DIR};
use super::package::{FileDigests, PackageInfo};
use super::rpm::{Dep, RpmInfo};
use super::{apt, yum};

/// Directory of the segment files under [`PRIVATE_DIR`].
const SEGMENT_DIR: &str = "segments";
/// First bytes of a segment file.
const MAGIC: &[u8] = b"mm-pkg segment 1\n";

/// Which index a package feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Format {
    /// An apt `Packages` index.
    Deb,
    /// The yum `primary`, `filelists` and `other`.
    Rpm,
}

impl Format {
    /// How many index texts a package of this format is part of.
    pub(super) fn texts(self) -> usize {
        match self {
            Format::Deb => 1,
            Format::Rpm => 3,
        }
    }

    /// The directory inside the repository that the format's package files and indexes live
    /// under (`apt`, `yum`).
    pub(super) fn root(self) -> &'static str {
        match self {
            Format::Deb => apt::APT_DIR,
            Format::Rpm => yum::YUM_DIR,
        }
    }

    /// What each index text says of `info`: its `Packages` stanza (closed by an empty line,
    /// as apt-ftparchive writes them), or its `primary`, `filelists` and `other` elements.
    fn units(self, info: &PackageInfo) -> Vec<String> {
        match self {
            Format::Deb => vec![apt::stanza(info) + "\n"],
            Format::Rpm => yum::fragments(info).to_vec(),
        }
    }
}

/// One package as the repository keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stored {
    /// apt component (a .deb only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) component: Option<String>,
    /// SHA-256 of the rpm that was added (the repository's copy may carry a new signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) input_sha256: Option<String>,
    /// What the indexes say of it.
    pub(super) info: PackageInfo,
}

impl Stored {
    /// Where the index lists it.
    pub(super) fn key(&self) -> (&str, &str) {
        (&self.info.name, &self.info.location)
    }
}

/// A segment as the state names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SegmentRef {
    /// SHA-256 of the segment file, lower-case hex (its name).
    pub(super) id: String,
    /// Name and location of its first package.
    pub(super) first: (String, String),
    /// Name and location of its last package.
    pub(super) last: (String, String),
    /// Number of packages.
    pub(super) count: usize,
}

impl SegmentRef {
    /// True when packages named `name` may be in it.
    pub(super) fn may_hold(&self, name: &str) -> bool {
        self.first.0.as_str() <= name && name <= self.last.0.as_str()
    }

    fn last_key(&self) -> (&str, &str) {
        (&self.last.0, &self.last.1)
    }

    fn first_key(&self) -> (&str, &str) {
        (&self.first.0, &self.first.1)
    }
}

/// The packages of one index, in index order, as segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Family {
    /// Which index.
    pub(super) format: Format,
    /// apt component (empty for yum).
    pub(super) component: String,
    /// apt architecture (empty for yum, whose one index holds every architecture).
    pub(super) arch: String,
    /// Its segments, in order.
    pub(super) segments: Vec<SegmentRef>,
}

impl Family {
    /// Number of packages.
    pub(super) fn count(&self) -> usize {
        self.segments.iter().map(|s| s.count).sum()
    }
}

/// One index text of a segment and its SHA-256.
pub(super) type Text = (Vec<u8>, [u8; 32]);

/// The segment files of one repository: reads them, and keeps the ones this run makes until
/// [`Store::stage`] writes them.
pub(super) struct Store {
    dir: PathBuf,
    /// Files made in this run, by id.
    made: HashMap<String, Vec<u8>>,
    /// Packages of the segments read in this run, by id.
    read: HashMap<String, Vec<Stored>>,
}

impl Store {
    /// The segments of the repository at `repo`.
    pub(super) fn new(repo: &Path) -> Self {
        Store {
            dir: repo.join(PRIVATE_DIR).join(SEGMENT_DIR),
            made: HashMap::new(),
            read: HashMap::new(),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The packages of `segment` (one made or read in this run, else its file, which must
    /// hash to its name).
    pub(super) fn packages(&mut self, segment: &SegmentRef) -> Result<Vec<Stored>> {
        if let Some(found) = self.read.get(&segment.id) {
            return Ok(found.clone());
        }
        // Segments made in this run are already in `read`.
        let path = self.path(&segment.id);
        let bytes = fs::read(&path).with_context(|| {
            format!("reading {} (restore .mm-pkg from a backup)", path.display())
        })?;
        if hex::encode(Sha256::digest(&bytes)) != segment.id {
            bail!(
                "{} is damaged (its SHA-256 is not its name): restore .mm-pkg from a backup",
                path.display()
            );
        }
        let (header, body) = parse_header(&bytes).with_context(|| damaged(&path))?;
        if body.len().checked_sub(header.texts_len) != Some(header.json_len) {
            bail!("{}", damaged(&path));
        }
        let json = &body[header.texts_len..];
        let packages: Vec<Stored> = serde_json::from_slice(json).with_context(|| damaged(&path))?;
        self.read.insert(segment.id.clone(), packages.clone());
        Ok(packages)
    }

    /// The index texts of `segment` (not its packages), checked against the checksum the
    /// file carries.
    pub(super) fn texts(&self, segment: &SegmentRef) -> Result<Vec<Text>> {
        let path = self.path(&segment.id);
        if let Some(bytes) = self.made.get(&segment.id) {
            let (header, body) = parse_header(bytes).with_context(|| damaged(&path))?;
            return Ok(header.split(&body[..header.texts_len]));
        }
        let mut file = File::open(&path).with_context(|| {
            format!("opening {} (restore .mm-pkg from a backup)", path.display())
        })?;
        let mut head = vec![0u8; MAGIC.len() + 1];
        file.read_exact(&mut head).with_context(|| damaged(&path))?;
        let n = usize::from(head[MAGIC.len()]);
        head.resize(head.len() + n * 40 + 8 + 4, 0);
        file.read_exact(&mut head[MAGIC.len() + 1..])
            .with_context(|| damaged(&path))?;
        let (header, _) = parse_header(&head).with_context(|| damaged(&path))?;
        // The lengths are checked against the file before anything is allocated for them.
        let size = file.metadata().with_context(|| damaged(&path))?.len();
        if (head.len() + header.texts_len) as u64 > size {
            bail!("{}", damaged(&path));
        }
        // Each text straight into its own buffer.
        let mut texts = Vec::with_capacity(header.texts.len());
        for (len, _) in &header.texts {
            let mut text = Vec::with_capacity(*len);
            (&mut file)
                .take(*len as u64)
                .read_to_end(&mut text)
                .with_context(|| damaged(&path))?;
            if text.len() != *len {
                bail!("{}", damaged(&path));
            }
            texts.push(text);
        }
        if header.crc != crc_of(&head[..head.len() - 4], &texts) {
            bail!("{}", damaged(&path));
        }
        Ok(texts
            .into_iter()
            .zip(header.texts.iter().map(|(_, sha)| *sha))
            .collect())
    }

    /// Stages in `batch` the segment files made in this run.
    pub(super) fn stage(&self, batch: &mut Batch) -> Result<()> {
        for (id, bytes) in &self.made {
            let path = self.path(id);
            if !path.exists() {
                batch.write(&path, bytes)?;
            }
        }
        Ok(())
    }

    /// Removes the segment files that none of `families` names.
    pub(super) fn remove_unreferenced(&self, families: &[Family]) -> Result<()> {
        let keep: BTreeSet<&str> = families
            .iter()
            .flat_map(|f| f.segments.iter().map(|s| s.id.as_str()))
            .collect();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.dir.display()))?;
            let name = entry.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                let path = entry.path();
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Makes the segment of `members` (in index order, each with its texts).
    fn make(&mut self, format: Format, members: Vec<(Stored, Vec<String>)>) -> Result<SegmentRef> {
        let n = format.texts();
        let texts: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                members
                    .iter()
                    .flat_map(|(_, units)| units[i].bytes())
                    .collect()
            })
            .collect();
        let packages: Vec<&Stored> = members.iter().map(|(p, _)| p).collect();
        let json = serde_json::to_vec(&packages)?;
        let mut bytes = MAGIC.to_vec();
        bytes.push(n as u8);
        for text in &texts {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&Sha256::digest(text));
        }
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        let crc = crc_of(&bytes, &texts);
        bytes.extend_from_slice(&crc.to_le_bytes());
        for text in &texts {
            bytes.extend_from_slice(text);
        }
        bytes.extend_from_slice(&json);
        let id = hex::encode(Sha256::digest(&bytes));
        let key = |p: &Stored| (p.info.name.clone(), p.info.location.clone());
        let segment = SegmentRef {
            id: id.clone(),
            first: key(&members[0].0),
            last: key(&members[members.len() - 1].0),
            count: members.len(),
        };
        self.read.insert(
            id.clone(),
            members.into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        );
        self.made.insert(id, bytes);
        Ok(segment)
    }
}

fn damaged(path: &Path) -> String {
    format!(
        "{} is damaged: restore .mm-pkg from a backup",
        path.display()
    )
}

/// CRC-32 of a segment's header (up to its checksum) and texts.
fn crc_of(head: &[u8], texts: &[Vec<u8>]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    texts.iter().for_each(|t| crc.update(t));
    crc.finalize()
}

/// The fixed part of a segment file.
struct Header {
    /// Length and SHA-256 of each text.
    texts: Vec<(usize, [u8; 32])>,
    /// Their total length.
    texts_len: usize,
    /// Length of the packages' JSON after the texts.
    json_len: usize,
    crc: u32,
}

impl Header {
    /// The texts of `body` (which starts with them).
    fn split(&self, body: &[u8]) -> Vec<Text> {
        let mut at = 0;
        self.texts
            .iter()
            .map(|(len, sha)| {
                let text = body[at..at + len].to_vec();
                at += len;
                (text, *sha)
            })
            .collect()
    }
}

/// The header of a segment file and what follows it.
fn parse_header(bytes: &[u8]) -> Result<(Header, &[u8])> {
    let rest = bytes.strip_prefix(MAGIC).context("not a segment file")?;
    let (&n, mut rest) = rest.split_first().context("truncated")?;
    let mut texts = Vec::new();
    for _ in 0..n {
        let (len, tail) = rest.split_at_checked(8).context("truncated")?;
        let (sha, tail) = tail.split_at_checked(32).context("truncated")?;
        let len = usize::try_from(u64::from_le_bytes(len.try_into()?))?;
        texts.push((len, sha.try_into()?));
        rest = tail;
    }
    let (json_len, tail) = rest.split_at_checked(8).context("truncated")?;
    let (crc, body) = tail.split_at_checked(4).context("truncated")?;
    let texts_len = texts
        .iter()
        .try_fold(0usize, |sum, (len, _)| sum.checked_add(*len))
        .context("text lengths overflow")?;
    let json_len = usize::try_from(u64::from_le_bytes(json_len.try_into()?))?;
    texts_len
        .checked_add(json_len)
        .context("lengths overflow")?;
    let header = Header {
        texts,
        texts_len,
        json_len,
        crc: u32::from_le_bytes(crc.try_into()?),
    };
    Ok((header, body))
}

/// Applies to `family` the packages in `add` (not already in it) and the removal of those
/// whose (name, location) is in `remove`: the segments they fall in are read, changed and cut
/// again, with those after one whose last package is gone, up to the next cut. Every segment
/// is made again when `all` (the index texts are rendered another way than the state's).
pub(super) fn update(
    store: &mut Store,
    family: &mut Family,
    mut add: Vec<Stored>,
    remove: &BTreeSet<(String, String)>,
    all: bool,
) -> Result<()> {
    let format = family.format;
    let gone = |p: &Stored| remove.contains(&(p.info.name.clone(), p.info.location.clone()));
    add.retain(|p| !gone(p));
    add.sort_by(|a, b| a.key().cmp(&b.key()));
    let segments = std::mem::take(&mut family.segments);
    let n = segments.len();
    let mut touched = vec![all; n];
    for p in &add {
        let i = segments
            .iter()
            .position(|s| s.last_key() >= p.key())
            .unwrap_or(n.saturating_sub(1));
        if n > 0 {
            touched[i] = true;
        }
    }
    for (name, location) in remove {
        let key = (name.as_str(), location.as_str());
        if let Some(i) = segments
            .iter()
            .position(|s| s.first_key() <= key && key <= s.last_key())
        {
            touched[i] = true;
        }
    }
    let mut adds = add.into_iter().peekable();
    let mut out = Vec::with_capacity(n + 1);
    let mut cutter = Cutter::new(format);
    for (i, segment) in segments.into_iter().enumerate() {
        // Where nothing is pending, a segment ends, and this one was cut from the same point:
        // unless it changes, it stays as it is.
        if !touched[i] && cutter.pending.is_empty() {
            out.push(segment);
            continue;
        }
        let mut members: Vec<Stored> = store
            .packages(&segment)?
            .into_iter()
            .filter(|p| !gone(p))
            .collect();
        let last = i + 1 == n;
        while let Some(p) = adds.next_if(|p| last || p.key() <= segment.last_key()) {
            members.push(p);
        }
        members.sort_by(|a, b| a.key().cmp(&b.key()));
        for p in members {
            cutter.push(store, p, &mut out)?;
        }
    }
    for p in adds {
        cutter.push(store, p, &mut out)?;
    }
    if !cutter.pending.is_empty() {
        out.push(store.make(format, cutter.pending)?);
    }
    family.segments = out;
    Ok(())
}

/// Packages gathered for the next segment, cut where [`cut_after`] says.
struct Cutter {
    format: Format,
    /// Each package with its index texts.
    pending: Vec<(Stored, Vec<String>)>,
    /// Bytes of each index text gathered.
    sizes: Vec<usize>,
}

impl Cutter {
    fn new(format: Format) -> Self {
        Cutter {
            format,
            pending: Vec::new(),
            sizes: vec![0; format.texts()],
        }
    }

    /// Adds `p`; when a segment ends after it, makes that segment and appends it to `out`.
    fn push(&mut self, store: &mut Store, p: Stored, out: &mut Vec<SegmentRef>) -> Result<()> {
        let units = self.format.units(&p.info);
        for (size, unit) in self.sizes.iter_mut().zip(&units) {
            *size += unit.len();
        }
        let len = units.iter().map(String::len).max().unwrap_or(0);
        let so_far = self.sizes.iter().copied().max().unwrap_or(0);
        let cut = cut_after(&p.info.location, len, so_far);
        self.pending.push((p, units));
        if cut {
            self.sizes.iter_mut().for_each(|s| *s = 0);
            out.push(store.make(self.format, std::mem::take(&mut self.pending))?);
        }
        Ok(())
    }
}

/// What tells apart the ways index texts are rendered and cut: a run whose tag differs from
/// the state's renders every segment again. It hashes the texts of two sample packages (a
/// .deb with every kind of field, an rpm with dependencies, files and a changelog) and the
/// cut decisions for a spread of keys, so a change of the stanza or XML writers or of the cut
/// rule changes it.
pub(super) fn renderer_tag() -> String {
    let digests = FileDigests {
        size: 1234,
        md5: "0".repeat(32),
        sha256: "1".repeat(64),
        sha512: "2".repeat(128),
    };
    let deb = PackageInfo {
        name: "sample".into(),
        version: "1:2.3-4".into(),
        arch: "amd64".into(),
        location: "pool/main/s/sample/sample_2.3-4_amd64.deb".into(),
        digests: digests.clone(),
        control: vec![
            ("Package".into(), "sample".into()),
            ("Description".into(), "one line\n more <&> lines\n .".into()),
            ("Conffiles".into(), "\n /etc/a 0123".into()),
        ],
        rpm: None,
    };
    let dep = |name: &str, pre| Dep {
        name: name.into(),
        flags: "GE".into(),
        evr: ("0".into(), "1.2".into(), "3".into()),
        pre,
    };
    let rpm = PackageInfo {
        name: "sample".into(),
        version: "2.3-4".into(),
        arch: "x86_64".into(),
        location: "Packages/sample-2.3-4.x86_64.rpm".into(),
        digests,
        control: Vec::new(),
        rpm: Some(RpmInfo {
            epoch: "1".into(),
            ver: "2.3".into(),
            rel: "4".into(),
            summary: "s <&>".into(),
            description: "d\n'\"".into(),
            provides: vec![dep("p", false)],
            requires: vec![dep("r", true), dep("q", false)],
            conflicts: vec![dep("c", false)],
            obsoletes: vec![dep("o", false)],
            recommends: vec![dep("m", false)],
            suggests: vec![dep("s", false)],
            files: vec![
                ("/etc/sample.conf".into(), String::new()),
                ("/usr/bin/sample".into(), String::new()),
                ("/opt/sample".into(), "dir".into()),
                ("/var/log/x".into(), "ghost".into()),
            ],
            changelog: vec![("a <a@b>".into(), 1, "- fix".into())],
            header_range: (1, 2),
            ..RpmInfo::default()
        }),
    };
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(TARGET.to_le_bytes());
    // Where segments are cut, for a spread of keys and lengths.
    let cuts: Vec<u8> = (0..256)
        .map(|i| u8::from(cut_after(&format!("pool/k{i}"), i * 64, i * 512)))
        .collect();
    h.update(&cuts);
    for (format, info) in [(Format::Deb, &deb), (Format::Rpm, &rpm)] {
        for unit in format.units(info) {
            h.update((unit.len() as u64).to_le_bytes());
            h.update(unit.as_bytes());
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// A small .deb (`bench0000`, ...) as the repository keeps it, for tests.
#[cfg(test)]
pub(super) fn sample_deb(i: usize) -> Stored {
    let name = format!("bench{i:04}");
    let location = format!("pool/main/b/{name}/{name}_1.0-1_amd64.deb");
    Stored {
        component: Some("main".into()),
        input_sha256: None,
        info: PackageInfo {
            name: name.clone(),
            version: "1.0-1".into(),
            arch: "amd64".into(),
            digests: FileDigests {
                size: i as u64,
                md5: format!("{:032x}", i),
                sha256: format!("{:064x}", i),
                sha512: format!("{:0128x}", i),
            },
            control: vec![
                ("Package".into(), name),
                ("Description".into(), "x".repeat(200)),
            ],
            location,
            rpm: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(i: usize) -> Stored {
        sample_deb(i)
    }

    fn family() -> Family {
        Family {
            format: Format::Deb,
            component: "main".into(),
            arch: "amd64".into(),
            segments: Vec::new(),
        }
    }

    fn text(store: &Store, family: &Family) -> Vec<u8> {
        family
            .segments
            .iter()
            .flat_map(|s| store.texts(s).unwrap().remove(0).0)
            .collect()
    }

    #[test]
    fn one_change_makes_about_one_segment_and_equals_building_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new(dir.path());
        let none = BTreeSet::new();
        let mut all = family();
        update(
            &mut store,
            &mut all,
            (0..600).map(package).collect(),
            &none,
            false,
        )
        .unwrap();
        assert!(all.segments.len() >= 8, "{} segments", all.segments.len());
        assert_eq!(all.count(), 600);

        // Built with one package missing, then that package added.
        let mut stepwise = family();
        let most = (0..600).filter(|&i| i != 300).map(package).collect();
        update(&mut store, &mut stepwise, most, &none, false).unwrap();
        let before = stepwise.segments.clone();
        let made = store.made.len();
        update(&mut store, &mut stepwise, vec![package(300)], &none, false).unwrap();
        let new = store.made.len() - made;
        assert!(new <= 2, "{new} segments made");
        assert_eq!(stepwise.segments, all.segments);
        let kept = before.iter().filter(|s| all.segments.contains(s)).count();
        assert!(kept + 2 >= before.len(), "{kept} of {} kept", before.len());

        // And removed again: the segments of the smaller set come back.
        let gone: BTreeSet<_> = [(package(300).info.name, package(300).info.location)].into();
        update(&mut store, &mut stepwise, Vec::new(), &gone, false).unwrap();
        assert_eq!(stepwise.segments, before);
        let expected: Vec<u8> = (0..600)
            .filter(|&i| i != 300)
            .flat_map(|i| Format::Deb.units(&package(i).info).remove(0).into_bytes())
            .collect();
        assert_eq!(text(&store, &stepwise), expected);
    }

    #[test]
    fn written_segments_read_back_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new(dir.path());
        let mut fam = family();
        update(
            &mut store,
            &mut fam,
            (0..200).map(package).collect(),
            &BTreeSet::new(),
            false,
        )
        .unwrap();
        let mut batch = Batch::new(dir.path()).unwrap();
        store.stage(&mut batch).unwrap();
        batch.commit().unwrap();
        let expected = text(&store, &fam);

        let mut fresh = Store::new(dir.path());
        assert_eq!(text(&fresh, &fam), expected);
        let back: Vec<String> = fam
            .segments
            .iter()
            .flat_map(|s| fresh.packages(s).unwrap())
            .map(|p| p.info.name)
            .collect();
        assert_eq!(back.len(), 200);

        // A flipped byte in the header or the packages, or in a text, is caught.
        let segment = &fam.segments[0];
        let path = fresh.path(&segment.id);
        let good = fs::read(&path).unwrap();
        let first_text = MAGIC.len() + 1 + 40 + 8 + 4;
        // The high byte of the first text's length: an absurd length is refused before
        // anything is allocated for it.
        let length_high = MAGIC.len() + 1 + 7;
        for (at, flip, in_text) in [
            (MAGIC.len() + 20, 1, true),
            (length_high, 0x40, true),
            (first_text + 3, 1, true),
            (good.len() - 5, 1, false),
        ] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            fs::write(&path, &bad).unwrap();
            let mut fresh = Store::new(dir.path());
            assert!(fresh.packages(segment).is_err(), "damage at {at} not seen");
            assert_eq!(fresh.texts(segment).is_err(), in_text, "damage at {at}");
        }
        // A change reads only the segments it falls in: damage to the packages of another
        // one (its texts intact) does not stop it.
        fs::write(&path, &good).unwrap();
        let mut damaged = good.clone();
        let last = damaged.len() - 2;
        damaged[last] ^= 1;
        fs::write(&path, &damaged).unwrap();
        let mut fresh = Store::new(dir.path());
        let mut changed = fam.clone();
        assert!(fam.segments.len() > 2, "{} segments", fam.segments.len());
        update(
            &mut fresh,
            &mut changed,
            vec![package(260)],
            &BTreeSet::new(),
            false,
        )
        .unwrap();
        assert_eq!(changed.count(), 201);
        assert_eq!(
            fresh.read.len(),
            fresh.made.len() + 1,
            "more than one segment was read"
        );

        // Files no family names go.
        fs::write(&path, &good).unwrap();
        fresh.remove_unreferenced(&[]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn the_renderer_tag_is_stable_within_a_build() {
        assert_eq!(renderer_tag(), renderer_tag());
        assert_eq!(renderer_tag().len(), 32);
    }
}
