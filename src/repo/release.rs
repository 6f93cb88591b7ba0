//! What clients read first, computed before anything is written: the plain-named indexes,
//! `Release` with `InRelease` and `Release.gpg`, `repomd.xml` with `repomd.xml.asc`, and the
//! client files. An index that did not change keeps its `Release` (and `repomd.xml`) and their
//! signatures byte for byte, so that a repeated add changes nothing.

use anyhow::Result;

use super::apt::{IndexFile, ReleaseMeta};
use super::dir::RepoDir;
use super::record::sha256_hex;
use super::state::State;
use super::yum::RepoData;
use super::{RepoOptions, apt, client, yum};
use crate::sign::{Signer, multi};

/// One file of the second batch.
pub struct File {
    /// Path inside the repository.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// True for `Release`, `repomd.xml` and their signatures: renamed last.
    pub signed: bool,
}

/// The files clients read first, and what decides their signatures.
pub struct Second<'a> {
    dir: &'a RepoDir,
    state: &'a State,
    signers: &'a [&'a Signer],
    /// True when the keys that signed last time are this run's.
    same_keys: bool,
    options: &'a RepoOptions,
    /// The files, in the order they are staged.
    pub files: Vec<File>,
}

impl<'a> Second<'a> {
    /// The files for `state`, signed by `signers`; starts with the public key file.
    pub fn new(
        dir: &'a RepoDir,
        state: &'a State,
        signers: &'a [&'a Signer],
        same_keys: bool,
        options: &'a RepoOptions,
    ) -> Result<Self> {
        let mut second = Second {
            dir,
            state,
            signers,
            same_keys,
            options,
            files: Vec::new(),
        };
        if !signers.is_empty() {
            let key = multi::public_armored(signers)?;
            second.push(client::KEY_FILE, key.into_bytes(), false);
        }
        Ok(second)
    }

    fn push(&mut self, path: &str, bytes: Vec<u8>, signed: bool) {
        self.files.push(File {
            path: path.to_string(),
            bytes,
            signed,
        });
    }

    /// The text staged for `path` (empty when none).
    pub fn text_of(&self, path: &str) -> String {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .unwrap_or_default()
    }

    /// Stages the plain-named indexes of `dists`, `Release` and its signatures, and
    /// `mattermost.sources`; returns the `Release` published before (empty when none).
    pub fn apt(&mut self, dists: &str, indexes: &[IndexFile]) -> Result<String> {
        for index in indexes {
            self.push(
                &format!("{dists}/{}", index.path),
                index.bytes.clone(),
                false,
            );
        }
        let meta = ReleaseMeta {
            origin: self.state.origin.clone(),
            label: self.state.label.clone(),
            suite: self.state.suite.clone(),
            date: not_before(self.options.date, self.state.published.release_date),
        };
        let mut release = apt::release(&meta, indexes);
        let path = format!("{dists}/Release");
        let render = |date| {
            apt::release(
                &ReleaseMeta {
                    date,
                    ..meta.clone()
                },
                indexes,
            )
        };
        let old = self.previous(&path, render, self.state.published.release_date)?;
        let unchanged = old
            .as_ref()
            .is_some_and(|old| apt::without_date(old) == apt::without_date(&release));
        if let Some(old) = old.as_ref().filter(|_| unchanged) {
            // Keep the published Date (and so the signatures) when nothing else changed.
            release = old.clone();
        }
        let (inrelease, detached) = (format!("{dists}/InRelease"), format!("{dists}/Release.gpg"));
        if !self.signers.is_empty() {
            let kept = unchanged && self.still_signed(&release, &detached, Some(&inrelease))?;
            let (clear, sig) = match kept {
                // Nothing changed and these keys signed it: no new signature, no changed byte.
                true => (self.dir.read(&inrelease)?, self.dir.read(&detached)?),
                false => (
                    Some(multi::clearsign(self.signers, &release)?.into_bytes()),
                    Some(multi::detached_armored(self.signers, release.as_bytes())?.into_bytes()),
                ),
            };
            self.push(&path, release.into_bytes(), true);
            if let Some(sig) = sig {
                self.push(&detached, sig, true);
            }
            if let Some(clear) = clear {
                self.push(&inrelease, clear, true);
            }
        } else {
            self.push(&path, release.into_bytes(), true);
        }
        let mut components: Vec<&str> = indexes
            .iter()
            .filter_map(|i| i.path.split('/').next())
            .collect();
        components.sort();
        components.dedup();
        let sources = client::sources_file(
            &self.state.suite,
            self.state.base_url.as_deref(),
            &components,
            !self.signers.is_empty(),
        );
        self.push(client::SOURCES_FILE, sources.into_bytes(), false);
        Ok(old.unwrap_or_default())
    }

    /// Stages `repomd.xml`, `repomd.xml.asc` and `mattermost.repo`; returns the `repomd.xml`
    /// published before (empty when none).
    pub fn yum(&mut self, data: &[RepoData]) -> Result<String> {
        let path = format!("{}/repodata/repomd.xml", yum::YUM_DIR);
        let mut repomd = yum::repomd(
            data,
            not_before(self.options.date, self.state.published.repomd_date),
        );
        let render = |date| yum::repomd(data, date);
        let old = self.previous(&path, render, self.state.published.repomd_date)?;
        if let Some(old) = old
            .as_ref()
            .filter(|old| yum::without_dates(old) == yum::without_dates(&repomd))
        {
            repomd = old.clone();
        }
        let unchanged = old.as_deref() == Some(repomd.as_str());
        let asc = format!("{path}.asc");
        if !self.signers.is_empty() {
            let kept = unchanged && self.still_signed(&repomd, &asc, None)?;
            let sig = match kept {
                true => self.dir.read(&asc)?,
                false => {
                    Some(multi::detached_armored(self.signers, repomd.as_bytes())?.into_bytes())
                }
            };
            self.push(&path, repomd.into_bytes(), true);
            if let Some(sig) = sig {
                self.push(&asc, sig, true);
            }
        } else {
            self.push(&path, repomd.into_bytes(), true);
        }
        let repo = client::repo_file(self.state.base_url.as_deref(), !self.signers.is_empty());
        self.push(client::REPO_FILE, repo.into_bytes(), false);
        Ok(old.unwrap_or_default())
    }

    /// The text the last run published at `path`: the file, or (when the directory does not
    /// hold it) the text `render` gives for the date the state recorded, if that hashes to
    /// what the state recorded.
    fn previous(
        &self,
        path: &str,
        render: impl Fn(u64) -> String,
        date: Option<u64>,
    ) -> Result<Option<String>> {
        if let Some(bytes) = self.dir.read(path)? {
            return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
        let Some(date) = date else {
            return Ok(None);
        };
        let text = render(date);
        let recorded = self.state.published.current.get(path);
        Ok((recorded == Some(&sha256_hex(text.as_bytes()))).then_some(text))
    }

    /// True when the detached signature at `detached` and (for apt) the clearsigned
    /// `InRelease` at `clearsigned` are there and sign `text` with each of this run's keys,
    /// which signed last time too (so an unchanged index keeps its signatures; a new key, or
    /// an `InRelease` an interrupted run left behind, re-signs). Without them in the
    /// directory of a `--state-only` run, what the state recorded of the last run says.
    fn still_signed(&self, text: &str, detached: &str, clearsigned: Option<&str>) -> Result<bool> {
        if !self.same_keys {
            return Ok(false);
        }
        let Some(sig) = self.dir.read(detached)? else {
            let recorded = |p: &str| self.state.published.current.contains_key(p);
            return Ok(self.options.state_only
                && recorded(detached)
                && clearsigned.is_none_or(recorded));
        };
        let norm = super::verify::norm;
        let clear_ok = match clearsigned {
            None => true,
            Some(path) => self.dir.read(path)?.is_some_and(|bytes| {
                let armored = String::from_utf8_lossy(&bytes);
                self.signers.iter().all(|s| {
                    multi::cleartext_signed_by(&armored, s).is_some_and(|t| norm(&t) == norm(text))
                })
            }),
        };
        let detached_ok = self
            .signers
            .iter()
            .all(|s| multi::detached_signed_by(&sig, text.as_bytes(), s));
        Ok(clear_ok && detached_ok)
    }
}

/// The `Date:` of the `Release` and the revision of the `repomd.xml` in `second` (seconds
/// since 1970), for the state to record.
pub fn dates(second: &Second) -> (Option<u64>, Option<u64>) {
    let dists = format!("{}/dists/{}", apt::APT_DIR, second.state.suite);
    let release = second.text_of(&format!("{dists}/Release"));
    let release_date = release
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(&d.replace(" UTC", " +0000")).ok())
        .map(|d| d.timestamp() as u64);
    let repomd = second.text_of(&format!("{}/repodata/repomd.xml", yum::YUM_DIR));
    let repomd_date = repomd
        .find("<revision>")
        .map(|i| &repomd[i + "<revision>".len()..])
        .and_then(|rest| rest.split('<').next())
        .and_then(|r| r.parse().ok());
    (release_date, repomd_date)
}

/// `date`, or the date published last when that is later: apt keeps lists whose `Date:` is
/// newer than a new Release's and never sees the change, so a `SOURCE_DATE_EPOCH` older
/// than the last publish (an older branch's fix) must not move the date back.
fn not_before(date: u64, published: Option<u64>) -> u64 {
    date.max(published.unwrap_or(0))
}
