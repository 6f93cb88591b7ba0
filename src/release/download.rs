//! Downloads into the cache: the signature first, then the tarball streamed into a `.part`
//! file and verified while it arrives; resumed with a Range request when the connection
//! drops; renamed to its final name only when complete and verified.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, RANGE};

use super::Release;
use super::http::{FIRST_BACKOFF, Http, HttpError};
use super::verify::{
    Expectations, StreamVerifier, Trust, Verified, feed_file, parse_signature, verify_file,
};

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

/// What must hold before a download is used.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Expected SHA-256 values with their source (`catalog`, `--sha256`).
    pub sha256: Vec<(String, String)>,
    /// Accept a release that has no signature.
    pub allow_unsigned: bool,
    /// Check nothing (`--insecure-skip-verify`).
    pub skip_verify: bool,
}

/// A tarball in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its path.
    pub path: PathBuf,
    /// What verification established (`None` when skipped).
    pub verified: Option<Verified>,
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
    /// The verified tarball of `release` from `url`, downloading it unless a cached copy
    /// verifies again.
    pub fn fetch(&self, release: &Release, url: &str, checks: &Checks) -> Result<Fetched> {
        let dir = self.cache_dir.join(release.version.to_string());
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating cache directory {}", dir.display()))?;
        let path = dir.join(release.tarball_name());
        let expect = match checks.skip_verify {
            true => Expectations::default(),
            false => {
                let signature = self.signature(url, &path)?;
                if signature.is_none() && !checks.allow_unsigned {
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
                         Mattermost's; pass --allow-unsigned to build it anyway"
                    );
                }
                Expectations {
                    sha256: checks.sha256.clone(),
                    signature,
                }
            }
        };

        if path.is_file() {
            if checks.skip_verify {
                return Ok(Fetched {
                    path,
                    verified: None,
                });
            }
            match verify_file(&path, &expect, self.trust) {
                Ok(verified) => {
                    return Ok(Fetched {
                        path,
                        verified: Some(verified),
                    });
                }
                Err(err) => {
                    eprintln!(
                        "mm-pkg: cached {} failed verification ({err:#}); removing it",
                        path.display()
                    );
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                }
            }
        }
        if self.offline {
            bail!(
                "{release} is not in the cache ({}) and --offline forbids downloading it",
                path.display()
            );
        }
        let part = dir.join(format!("{}.part", release.tarball_name()));
        let verified = self.download(release, url, &part, &expect)?;
        fs::rename(&part, &path)
            .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
        Ok(Fetched {
            path,
            verified: (!checks.skip_verify).then_some(verified),
        })
    }

    /// The detached signature for the tarball at `path`: cached beside it, or fetched.
    fn signature(
        &self,
        url: &str,
        path: &Path,
    ) -> Result<Option<(pgp::packet::Signature, String)>> {
        let sig_url = format!("{url}.sig");
        let sig_path = path.with_file_name(format!(
            "{}.sig",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let bytes = if sig_path.is_file() {
            fs::read(&sig_path).with_context(|| format!("reading {}", sig_path.display()))?
        } else if self.offline {
            return Ok(None);
        } else {
            let response = match self.http.send(&sig_url, || self.http.get(&sig_url)) {
                Ok(r) => r,
                Err(HttpError::NotFound { .. }) => return Ok(None),
                Err(err) => bail!("fetching the signature: {err}"),
            };
            let bytes = response
                .bytes()
                .with_context(|| format!("reading {sig_url}"))?
                .to_vec();
            parse_signature(&bytes).with_context(|| format!("the signature at {sig_url}"))?;
            fs::write(&sig_path, &bytes)
                .with_context(|| format!("writing {}", sig_path.display()))?;
            bytes
        };
        let sig = parse_signature(&bytes)
            .with_context(|| format!("the signature {}", sig_path.display()))?;
        Ok(Some((sig, sig_url)))
    }

    /// Streams `url` into `part`, resuming after dropped connections, and verifies it.
    fn download(
        &self,
        release: &Release,
        url: &str,
        part: &Path,
        expect: &Expectations,
    ) -> Result<Verified> {
        let mut verifier = StreamVerifier::new(expect, self.trust)?;
        let mut have = 0u64;
        if part.is_file() {
            // A previous run was interrupted: its bytes are verified from the file, the rest resumed.
            feed_file(part, &mut verifier)?;
            have = fs::metadata(part)
                .with_context(|| format!("reading {}", part.display()))?
                .len();
        }
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
                Err(HttpError::NotFound { .. }) => bail!("{release} is not published at {url}"),
                Err(HttpError::Status { status, .. })
                    if status == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    break;
                }
                Err(err) => bail!("downloading {release}: {err}"),
            };
            if have > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
                // The server ignored the range: start over.
                file.set_len(0)
                    .with_context(|| format!("truncating {}", part.display()))?;
                verifier = StreamVerifier::new(expect, self.trust)?;
                have = 0;
            }
            let length = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let total = length.map(|l| l + have);
            progress.start(total, have);
            let dropped = loop {
                match response.read(&mut buf) {
                    Ok(0) => break total.is_some_and(|t| have < t),
                    Ok(n) => {
                        file.write_all(&buf[..n])
                            .with_context(|| format!("writing {}", part.display()))?;
                        verifier.update(&buf[..n]);
                        have += n as u64;
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
        drop(file);
        progress.finish(have);
        match verifier.finish(&release.tarball_name()) {
            Ok(verified) => Ok(verified),
            Err(err) => {
                let _ = fs::remove_file(part);
                Err(err.context(format!("the download from {url} was deleted")))
            }
        }
    }
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

/// Verifies a local tarball given with `--tarball`: against `checks.sha256`, and against a
/// `.sig` file beside it when there is one. Warns when nothing can be checked.
pub fn verify_local(path: &Path, checks: &Checks, trust: &Trust) -> Result<Option<Verified>> {
    if checks.skip_verify {
        return Ok(None);
    }
    let expect = Expectations {
        sha256: checks.sha256.clone(),
        signature: super::verify::signature_beside(path)?,
    };
    if expect.is_empty() {
        eprintln!(
            "mm-pkg: warning: {} is UNVERIFIED: the catalog does not list it, no --sha256 was given \
             and no .sig lies beside it",
            path.display()
        );
        return Ok(None);
    }
    verify_file(path, &expect, trust).map(Some)
}
