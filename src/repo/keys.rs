//! Which keys sign a repository, and whether its state is vouched for: the one place that
//! refuses an operator's key mistakes before anything is written.
//!
//! A signed repository stays signed by its key: an add without a key (or with an empty
//! `MM_PKG_SIGN_KEY`) or with another key is refused, with what to do. A key changes only by
//! rotation: `--sign-key NEW --rotate-from OLD` starts (and, run again, continues) an overlap
//! in which the metadata carries a signature of each key, `mattermost.asc` holds both keys
//! and rpm copies carry the old key's header signature (an rpm carries one; every client
//! holds the old key); `--sign-key NEW --finish-rotation` retires the old key and signs every
//! rpm copy with the new one.
//!
//! The state names the repository's keys and, in a signed repository, is clearsigned by
//! them: a run that holds one of them checks that signature, so records nobody holding the
//! key wrote are not published. A signing run over a state no key vouches for (an unsigned
//! repository signed for the first time, or a state an earlier version wrote) checks every
//! record against its pool file instead.

use std::sync::Arc;

use anyhow::{Result, bail};

use super::dir::RepoDir;
use super::state::Found;
use super::{RepoOptions, apt, yum};
use crate::sign::{Signer, multi};

/// How far the records of the state read are vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouched {
    /// A repository key this run holds signed the state (or there is nothing to vouch for).
    Signed,
    /// The repository is not signed: records are only checked as package files are.
    Unsigned,
    /// This run signs, but no key signed the state: each record is checked against its pool
    /// file before it is published under a signature.
    NotYet,
}

/// The keys of this run.
pub struct Keys {
    /// The keys that sign the metadata, in order (the old key first while rotating).
    pub signers: Vec<Arc<Signer>>,
    /// The key whose header signature the rpm copies carry.
    pub rpm: Option<Arc<Signer>>,
    /// Fingerprints the state names after this run.
    pub fingerprints: Vec<String>,
    /// True when the rotation finishes now: every rpm copy is signed with the new key.
    pub resign_rpms: bool,
    /// How far the state read is vouched for.
    pub vouched: Vouched,
}

impl Keys {
    /// The signers as references.
    pub fn refs(&self) -> Vec<&Signer> {
        self.signers.iter().map(|s| s.as_ref()).collect()
    }
}

/// A file in `dir` that only a signed repository has (an `InRelease` or `Release.gpg` of any
/// suite, `repomd.xml.asc`, the client key file), if one is there.
pub fn signature_found(dir: &RepoDir) -> Result<Option<String>> {
    let mut candidates = Vec::new();
    for suite in dir.list(&format!("{}/dists", apt::APT_DIR))? {
        for name in ["InRelease", "Release.gpg"] {
            candidates.push(format!("{}/dists/{}/{name}", apt::APT_DIR, suite.name));
        }
    }
    candidates.push(format!("{}/repodata/repomd.xml.asc", yum::YUM_DIR));
    candidates.push(super::client::KEY_FILE.to_string());
    for rel in candidates {
        if dir.exists(&rel)? {
            return Ok(Some(rel));
        }
    }
    Ok(None)
}

/// True when the published metadata of `dir` carries a signature by `signer`.
fn signs_published(dir: &RepoDir, suite: &str, signer: &Signer) -> Result<bool> {
    let inrelease = format!("{}/dists/{suite}/InRelease", apt::APT_DIR);
    if let Some(bytes) = dir.read(&inrelease)? {
        let text = String::from_utf8_lossy(&bytes);
        return Ok(multi::cleartext_signed_by(&text, signer).is_some());
    }
    let repomd = format!("{}/repodata/repomd.xml", yum::YUM_DIR);
    match (dir.read(&repomd)?, dir.read(&format!("{repomd}.asc"))?) {
        (Some(data), Some(sig)) => Ok(multi::detached_signed_by(&sig, &data, signer)),
        _ => Ok(false),
    }
}

/// The keys of a run with `options` over the state `found` of `dir`, or why it is refused.
pub fn decide(dir: &RepoDir, found: Option<&Found>, options: &RepoOptions) -> Result<Keys> {
    let shown = dir.path().display();
    let state_keys: Vec<String> = found.map(|f| f.state.keys.clone()).unwrap_or_default();
    let suite = found.map_or(super::DEFAULT_SUITE, |f| f.state.suite.as_str());
    let holds_packages = found.is_some_and(|f| {
        !f.state.packages.is_empty() || f.legacy.as_ref().is_some_and(|l| !l.is_empty())
    });
    let published = signature_found(dir)?;
    let fp = |s: &Arc<Signer>| s.fingerprint();
    let (new, old) = (options.signer.clone(), options.rotate_from.clone());
    let needs_first_signing = published.is_none() && state_keys.is_empty() && holds_packages;
    if options.first_signing && !needs_first_signing {
        bail!(
            "--first-signing is for signing, once, a repository that holds packages no key \
             signed; {shown} is not one (it is signed, or holds no package): drop the flag. \
             Nothing was changed."
        );
    }
    let Some(new) = new else {
        if old.is_some() || options.finish_rotation || options.first_signing {
            bail!(
                "--rotate-from, --finish-rotation and --first-signing need --sign-key. Nothing \
                 was changed."
            );
        }
        if let Some(first) = state_keys.first() {
            bail!(
                "{shown} is signed by key {first}, but no --sign-key was given (or \
                 MM_PKG_SIGN_KEY is empty): adding unsigned would strip its signatures and \
                 make clients trust it blindly. Pass the repository's key. Nothing was changed."
            );
        }
        if let Some(sig) = published {
            bail!(
                "{shown} is signed ({sig} exists), but no --sign-key was given (or \
                 MM_PKG_SIGN_KEY is empty): adding unsigned would strip its signatures and \
                 make clients trust it blindly. Pass the repository's key. Nothing was changed."
            );
        }
        return Ok(Keys {
            signers: Vec::new(),
            rpm: None,
            fingerprints: Vec::new(),
            resign_rpms: false,
            vouched: Vouched::Unsigned,
        });
    };
    if old.is_some() && options.finish_rotation {
        bail!(
            "--rotate-from continues a rotation and --finish-rotation ends it: give one. Nothing was changed."
        );
    }
    if old.as_ref().is_some_and(|o| fp(o) == fp(&new)) {
        bail!("--rotate-from names the same key as --sign-key. Nothing was changed.");
    }
    let rotate_hint = |current: &str| {
        format!(
            "to change the repository's key, rotate: `repo add --sign-key NEW --rotate-from OLD` \
             signs with both until `repo add --sign-key NEW --finish-rotation` retires OLD \
             (the repository's key is {current}). Nothing was changed."
        )
    };
    let (signers, resign_rpms) = match state_keys.as_slice() {
        [] => {
            if let Some(sig) = &published {
                // A state an earlier version wrote names no key: the published signatures say.
                let legacy = found.is_some_and(|f| f.legacy.is_some());
                if !legacy {
                    bail!(
                        "{shown}/.mm-pkg/state.json says the repository is unsigned, but {sig} \
                         is there: the state was replaced. Restore .mm-pkg from a backup. \
                         Nothing was changed."
                    );
                }
                if signs_published(dir, suite, &new)? {
                    if old.is_some() || options.finish_rotation {
                        bail!(
                            "{shown} is signed by --sign-key already: nothing to rotate. Nothing was changed."
                        );
                    }
                    (vec![new.clone()], false)
                } else if let Some(old) =
                    old.filter(|o| signs_published(dir, suite, o).unwrap_or(false))
                {
                    (vec![old, new.clone()], false)
                } else {
                    bail!(
                        "{shown} is signed ({sig} is there), but no signature on its \
                         {suite} InRelease or repomd.xml checks with --sign-key {}: either \
                         another key signs it ({}), or its signatures were removed or \
                         replaced (restore the repository from a backup)",
                        fp(&new),
                        rotate_hint("the one that signed it")
                    );
                }
            } else {
                if old.is_some() || options.finish_rotation {
                    bail!(
                        "{shown} is not signed yet: there is no key to rotate from. Nothing was changed."
                    );
                }
                if holds_packages && !options.first_signing {
                    bail!(
                        "{shown} holds packages that no key signed, and this run would sign them: \
                         every client would then trust them as the key holder's. If the \
                         repository was never signed, check what it holds (`mm-pkg repo list`) \
                         and pass --first-signing once. If it was signed, someone removed its \
                         signatures and may have changed its state: restore it from a backup. \
                         Nothing was changed."
                    );
                }
                (vec![new.clone()], false)
            }
        }
        [current] => {
            if *current == fp(&new) {
                if old.is_some() {
                    bail!(
                        "{shown} is signed by --sign-key already: nothing to rotate from. Nothing was changed."
                    );
                }
                if options.finish_rotation {
                    bail!("{shown} is not rotating keys: nothing to finish. Nothing was changed.");
                }
                (vec![new.clone()], false)
            } else if let Some(old) = old.filter(|o| fp(o) == *current) {
                (vec![old, new.clone()], false)
            } else {
                bail!(
                    "{shown} is signed by key {current}, not by --sign-key {}: {}",
                    fp(&new),
                    rotate_hint(current)
                );
            }
        }
        [from, to] => {
            let continuing = *to == fp(&new) && old.as_ref().is_some_and(|o| fp(o) == *from);
            if continuing {
                (vec![old.expect("checked"), new.clone()], false)
            } else if *to == fp(&new) && options.finish_rotation {
                (vec![new.clone()], true)
            } else {
                bail!(
                    "{shown} is rotating from key {from} to key {to}: pass `--sign-key NEW \
                     --rotate-from OLD` to go on signing with both, or `--sign-key NEW \
                     --finish-rotation` to retire the old key. Nothing was changed."
                );
            }
        }
        _ => bail!("{shown}/.mm-pkg/state.json names more than two keys: restore it from a backup"),
    };
    let vouched = match found {
        // Checked even when the state names no package: an unsigned state could otherwise
        // withdraw every package (or redirect the base URL) under the key's next signature.
        Some(f) if !state_keys.is_empty() => {
            let held = [options.signer.as_ref(), options.rotate_from.as_ref()];
            let vouches = f.signed.as_ref().is_some_and(|signed| {
                held.into_iter()
                    .flatten()
                    .filter(|s| state_keys.contains(&s.fingerprint()))
                    .any(|s| signed.signed_by(s))
            });
            if !vouches {
                bail!(
                    "{shown}/.mm-pkg/state.json is not signed by the repository's key: it was \
                     changed by hand, or by someone without the key. Publishing it would sign \
                     packages the key holder never saw. Restore .mm-pkg from a backup. Nothing \
                     was changed."
                );
            }
            Vouched::Signed
        }
        _ if holds_packages => Vouched::NotYet,
        _ => Vouched::Signed,
    };
    Ok(Keys {
        fingerprints: signers.iter().map(fp).collect(),
        rpm: signers.first().cloned(),
        signers,
        resign_rpms,
        vouched,
    })
}
