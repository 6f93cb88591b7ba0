//! Downloads into the cache: the signature first, then the tarball streamed into a `.part`
//! file, resumed with a Range request when the connection drops, verified from the file and
//! renamed to its final name only then. A lock file per entry keeps concurrent builds that
//! share a cache from writing the same `.part`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, RANGE};

use super::Release;
pub use super::checks::{CATALOG, Checks};
use super::http::{FIRST_BACKOFF, Http, HttpError};
use super::verify::{Expectations, Trust, check_signature_policy, parse_signatures, verify_file};
use pgp::packet::Signature;

/// The cache directory: `$XDG_CACHE_HOME/mm-pkg`, else `~/.cache/mm-pkg`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mm-pkg");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("mm-pkg"),
        None => std::env::temp_dir().join("mm-pkg-cache"),
    }
}

/// Creates the cache directory `dir` for this user alone (mode 0700) when it is missing, and
/// refuses one another user could plant files in ([`crate::owned_dir::check`]): mm-pkg
/// writes, appends to and truncates files there by name.
pub fn check_cache_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if fs::symlink_metadata(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating cache directory {}", dir.display()))?;
    }
    crate::owned_dir::check(dir, "cache directory")
}

/// A tarball in the cache, verified when it was put there or found there.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its path.
    pub path: PathBuf,
    /// What it must match: the build checks these again on the bytes it reads.
    pub expect: Expectations,
}

/// Fetches releases into the cache.
pub struct Downloader<'a> {
    /// HTTP client.
    pub http: &'a Http,
    /// Cache directory.
    pub cache_dir: PathBuf,
    /// No network: only the cache.
    pub offline: bool,
    /// Trusted signing keys.
    pub trust: &'a Trust,
}

impl Downloader<'_> {
    /// The tarball of `release` from `url` in the cache, downloading it unless a cached copy
    /// verifies. One process at a time works on a cache entry (a lock file beside it): a
    /// second build of the same release waits, then uses what the first downloaded.
    pub fn fetch(&self, release: &Release, url: &str, checks: &Checks) -> Result<Fetched> {
        // Every caller (build, sync) writes here by name: refuse a cache another user controls.
        check_cache_dir(&self.cache_dir)?;
        let dir = self.cache_dir.join(release.version.to_string());
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating cache directory {}", dir.display()))?;
        let path = dir.join(release.tarball_name());
        let _lock = lock_entry(&dir.join(format!("{}.lock", release.tarball_name())))?;
        if self.offline && !path.is_file() {
            bail!(
                "{release} is not in the cache ({}); run once without --offline",
                path.display()
            );
        }
        let mut expect = self.expectations(release, url, &path, checks)?;
        // A signature that cannot count (untrusted, refused class or digest, expired key) is
        // not the cached tarball's fault: say so before deleting or downloading anything.
        if let Err(err) = check_signature_policy(&expect, self.trust) {
            let sig_path = signature_path(&path);
            let cached = expect
                .signature
                .as_ref()
                .is_some_and(|(_, name)| *name == sig_path.display().to_string());
            if !cached || self.offline {
                return Err(err);
            }
            // Upstream may have signed the release again (a new key): fetch the .sig again
            // once rather than fail until someone deletes the cached one.
            eprintln!(
                "mm-pkg: the cached signature {} cannot count ({err:#}); fetching it again",
                sig_path.display()
            );
            fs::remove_file(&sig_path)
                .with_context(|| format!("removing {}", sig_path.display()))?;
            expect = self.expectations(release, url, &path, checks)?;
            check_signature_policy(&expect, self.trust)?;
        }
        if path.is_file() {
            if expect.is_empty() {
                // Nothing to check (--insecure-skip-verify, or unsigned and uncatalogued).
                return Ok(Fetched { path, expect });
            }
            match verify_file(&path, &expect, self.trust) {
                Ok(_) => return Ok(Fetched { path, expect }),
                Err(err) => {
                    eprintln!(
                        "mm-pkg: cached {} failed verification ({err:#}); removing it",
                        path.display()
                    );
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    if self.offline {
                        bail!(
                            "{release} is no longer in the cache ({}); run once without --offline",
                            path.display()
                        );
                    }
                }
            }
        }
        let part = dir.join(format!("{}.part", release.tarball_name()));
        self.download(release, url, &part)?;
        // Verify the file that is renamed into place, not the stream that filled it.
        if !expect.is_empty()
            && let Err(err) = verify_file(&part, &expect, self.trust)
        {
            let _ = fs::remove_file(&part);
            return Err(err.context(format!("the download from {url} was deleted")));
        }
        fs::rename(&part, &path)
            .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
        Ok(Fetched { path, expect })
    }

    /// What the tarball of `release` at `path` must match: the signature (cached or fetched)
    /// and the hashes of `checks`. Fails when it must be signed and is not.
    fn expectations(
        &self,
        release: &Release,
        url: &str,
        path: &Path,
        checks: &Checks,
    ) -> Result<Expectations> {
        Ok(match checks.skip_verify {
            true => Expectations::default(),
            false => {
                let signature = self.signature(url, path)?;
                // A pin for this release proves the bytes as a signature would.
                if signature.is_none() && !checks.allow_unsigned && !checks.pinned() {
                    if !self.offline && !path.is_file() {
                        // Say "not published" rather than "unsigned" when there is nothing at all.
                        if let Err(HttpError::NotFound { .. }) =
                            self.http.send(url, || self.http.head(url))
                        {
                            bail!("{release} is not published at {url}");
                        }
                    }
                    bail!(
                        "{release} has no OpenPGP signature at {url}.sig, so it cannot be proven to be \
                         Mattermost's; pin its SHA-256 (--sha256) if you know it, or pass \
                         --allow-unsigned to build it unverified"
                    );
                }
                Expectations {
                    sha256: checks.sha256.clone(),
                    signature,
                    identity: None,
                }
            }
        })
    }

    /// The detached signature for the tarball at `path`: cached beside it (and named by
    /// that path), or fetched (and named by its URL). A cached file that is not a signature
    /// is deleted and fetched again.
    fn signature(&self, url: &str, path: &Path) -> Result<Option<(Vec<Signature>, String)>> {
        let sig_url = format!("{url}.sig");
        let sig_path = signature_path(path);
        if sig_path.is_file() {
            let bytes =
                fs::read(&sig_path).with_context(|| format!("reading {}", sig_path.display()))?;
            match parse_signatures(&bytes) {
                Ok(sigs) => return Ok(Some((sigs, sig_path.display().to_string()))),
                Err(err) if self.offline => bail!(
                    "the cached signature {} is unusable ({err:#}); delete it or run without --offline",
                    sig_path.display()
                ),
                Err(err) => {
                    eprintln!(
                        "mm-pkg: the cached signature {} is unusable ({err:#}); fetching it again",
                        sig_path.display()
                    );
                    fs::remove_file(&sig_path)
                        .with_context(|| format!("removing {}", sig_path.display()))?;
                }
            }
        }
        if self.offline {
            return Ok(None);
        }
        let response = match self.http.send(&sig_url, || self.http.get(&sig_url)) {
            Ok(r) => r,
            Err(HttpError::NotFound { .. }) => return Ok(None),
            Err(err) => bail!("fetching the signature: {err}"),
        };
        let bytes = super::http::read_body(response, &sig_url, MAX_SIGNATURE)?;
        let sigs =
            parse_signatures(&bytes).with_context(|| format!("the signature at {sig_url}"))?;
        let tmp = sig_path.with_extension("sig.part");
        fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &sig_path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), sig_path.display()))?;
        Ok(Some((sigs, sig_url)))
    }

    /// Streams `url` into `part`, resuming after dropped connections.
    fn download(&self, release: &Release, url: &str, part: &Path) -> Result<()> {
        let mut have = match fs::metadata(part) {
            // A previous run was interrupted: resume after its bytes.
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .with_context(|| format!("opening {}", part.display()))?;
        let progress = Progress::new(url);
        let mut failures = 0;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let request = || {
                let req = self.http.get(url);
                if have > 0 {
                    req.header(RANGE, format!("bytes={have}-"))
                } else {
                    req
                }
            };
            let mut response = match self.http.send(url, request) {
                Ok(r) => r,
                Err(HttpError::NotFound { url: at }) => bail!("{release} is not published at {at}"),
                Err(HttpError::Status { status, .. })
                    if status == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    break;
                }
                Err(err) => bail!("downloading {release}: {err}"),
            };
            super::http::check_encoding(&response, url)?;
            if have > 0 && !super::http::resumes_at(&response, have) {
                // The server ignored the range (200) or answered another one: start over.
                file.set_len(0)
                    .with_context(|| format!("truncating {}", part.display()))?;
                have = 0;
                if response.status() == StatusCode::PARTIAL_CONTENT {
                    progress.note("the server answered another range than asked; starting over");
                    continue;
                }
            }
            let length = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let total = length.map(|l| l.saturating_add(have));
            if let Some(total) = total {
                too_large(url, total, part)?;
            }
            progress.start(total, have);
            let dropped = loop {
                match response.read(&mut buf) {
                    Ok(0) => break total.is_some_and(|t| have < t),
                    Ok(n) => {
                        file.write_all(&buf[..n])
                            .with_context(|| format!("writing {}", part.display()))?;
                        have += n as u64;
                        too_large(url, have, part)?;
                        progress.set(have);
                    }
                    Err(_) => break true,
                }
            };
            if !dropped {
                break;
            }
            failures += 1;
            if failures >= self.http.attempts() {
                bail!(
                    "downloading {url}: the connection dropped {failures} times (kept {have} bytes in {} to resume)",
                    part.display()
                );
            }
            progress.note(&format!("connection dropped after {have} bytes; resuming"));
            sleep(FIRST_BACKOFF * 2u32.pow(failures - 1));
        }
        file.sync_all()
            .with_context(|| format!("writing {}", part.display()))?;
        progress.finish(have);
        Ok(())
    }
}

/// Where the signature of the cached tarball `path` is kept.
fn signature_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.sig",
        path.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// The largest `.sig` file accepted (upstream's are a few hundred bytes).
const MAX_SIGNATURE: u64 = 1 << 20;

/// The largest release tarball downloaded: upstream's are under 1 GiB, and a package over
/// 4 GiB cannot be written anyway; a server that sends more would only fill the disk.
pub const MAX_TARBALL: u64 = 4 << 30;

/// Fails, removing `part`, when a download of `url` is (or claims to be) `bytes` long and
/// that is more than [`MAX_TARBALL`].
fn too_large(url: &str, bytes: u64, part: &Path) -> Result<()> {
    if bytes <= MAX_TARBALL {
        return Ok(());
    }
    fs::remove_file(part).with_context(|| format!("removing {}", part.display()))?;
    bail!(
        "{url} is more than {MAX_TARBALL} bytes ({bytes} so far or announced): upstream's \
         tarballs are under 1 GiB and packages over 4 GiB cannot be written; refusing to \
         download it"
    )
}

/// Takes the lock of one cache entry, waiting (and saying so) while another process holds it.
fn lock_entry(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "mm-pkg: another mm-pkg is working on {}; waiting for it",
                path.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// A progress bar on a terminal, plain lines otherwise (CI logs).
struct Progress {
    bar: Option<ProgressBar>,
    url: String,
}

impl Progress {
    fn new(url: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .expect("valid progress template"),
            );
            bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
            bar
        });
        if bar.is_none() {
            eprintln!("mm-pkg: downloading {url}");
        }
        Progress {
            bar,
            url: url.to_string(),
        }
    }

    fn start(&self, total: Option<u64>, have: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.unwrap_or(0));
            bar.set_position(have);
        }
    }

    fn set(&self, have: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(have);
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("mm-pkg: {text}"),
        }
    }

    fn finish(&self, have: u64) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("mm-pkg: downloaded {} ({have} bytes)", self.url),
        }
    }
}

/// What a local tarball given with `--tarball` must match: `checks.sha256` and the `.sig`
/// file beside it when there is one. Nothing is read from the tarball here: the build checks
/// these on the bytes it reads (a FIFO or a file being rewritten cannot show other bytes to
/// the check than to the build).
pub fn local_expectations(path: &Path, checks: &Checks) -> Result<Expectations> {
    if checks.skip_verify {
        return Ok(Expectations::default());
    }
    Ok(Expectations {
        sha256: checks.sha256.clone(),
        signature: super::verify::signature_beside(path)?,
        identity: None,
    })
}
