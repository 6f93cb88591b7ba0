//! The files an admin copies to a host to install from the repository: the public key
//! (`mattermost.asc`), the deb822 sources entry (`mattermost.sources`) and the yum repo file
//! (`mattermost.repo`).

use std::path::Path;

use anyhow::Result;

use super::files::Batch;
use crate::sign::Signer;

/// The public key, beside the repository's `apt/`.
pub const KEY_FILE: &str = "mattermost.asc";
/// The yum/dnf repository file.
pub const REPO_FILE: &str = "mattermost.repo";
/// The apt sources entry.
pub const SOURCES_FILE: &str = "mattermost.sources";
/// Where the sources entry expects the key on a host.
pub const HOST_KEYRING: &str = "/etc/apt/keyrings/mattermost.asc";
/// The URL written when no `--base-url` was given: it says what to do.
pub const PLACEHOLDER_URL: &str = "https://REPLACE-ME.invalid/give-repo-add-a---base-url";

/// Stages `mattermost.sources` for `dir` in `batch`.
pub fn write_client_files(
    batch: &mut Batch,
    dir: &Path,
    suite: &str,
    base_url: Option<&str>,
    components: &[&str],
    signer: Option<&Signer>,
) -> Result<()> {
    let base = base_url.unwrap_or(PLACEHOLDER_URL);
    let trust = match signer {
        Some(_) => format!("Signed-By: {HOST_KEYRING}\n"),
        None => {
            "# UNSIGNED repository (no --sign-key): apt trusts it blindly.\nTrusted: yes\n".into()
        }
    };
    let components = if components.is_empty() {
        super::DEFAULT_COMPONENT.to_string()
    } else {
        components.join(" ")
    };
    let sources = format!(
        "# Mattermost packages, written by mm-pkg repo add.\n\
         # Copy this file to /etc/apt/sources.list.d/ and {KEY_FILE} to {HOST_KEYRING}.\n\
         Types: deb\nURIs: {base}/apt\nSuites: {suite}\nComponents: {components}\n{trust}"
    );
    batch.write(&dir.join(SOURCES_FILE), sources.as_bytes())?;
    Ok(())
}

/// Stages `mattermost.repo` for `dir` in `batch`: gpgcheck and repo_gpgcheck on when `signed`.
pub fn write_yum_repo_file(
    batch: &mut Batch,
    dir: &Path,
    base_url: Option<&str>,
    signed: bool,
) -> Result<()> {
    let base = base_url.unwrap_or(PLACEHOLDER_URL);
    let checks = if signed {
        format!("gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={base}/{KEY_FILE}\n")
    } else {
        "# UNSIGNED repository (no --sign-key): nothing is checked.\ngpgcheck=0\nrepo_gpgcheck=0\n"
            .to_string()
    };
    let text = format!(
        "# Mattermost packages, written by mm-pkg repo add. Copy to /etc/yum.repos.d/.\n\
         [mattermost]\nname=Mattermost\nbaseurl={base}/{}\nenabled=1\n{checks}",
        super::yum::YUM_DIR
    );
    batch.write(&dir.join(REPO_FILE), text.as_bytes())?;
    Ok(())
}
