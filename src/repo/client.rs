//! The files an admin copies to a host to install from the repository: the public key
//! (`mattermost.asc`), the deb822 sources entry (`mattermost.sources`) and the yum repo file
//! (`mattermost.repo`).

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

/// The text of `mattermost.sources`: `Signed-By:` the host's copy of the key when `signed`.
pub fn sources_file(
    suite: &str,
    base_url: Option<&str>,
    components: &[&str],
    signed: bool,
) -> String {
    let base = base_url.unwrap_or(PLACEHOLDER_URL);
    let trust = match signed {
        true => format!("Signed-By: {HOST_KEYRING}\n"),
        false => {
            "# UNSIGNED repository (no --sign-key): apt trusts it blindly.\nTrusted: yes\n".into()
        }
    };
    let components = if components.is_empty() {
        super::DEFAULT_COMPONENT.to_string()
    } else {
        components.join(" ")
    };
    format!(
        "# Mattermost packages, written by mm-pkg repo add.\n\
         # Copy this file to /etc/apt/sources.list.d/ and {KEY_FILE} to {HOST_KEYRING}.\n\
         Types: deb\nURIs: {base}/apt\nSuites: {suite}\nComponents: {components}\n{trust}"
    )
}

/// The text of `mattermost.repo`: gpgcheck and repo_gpgcheck on when `signed`.
pub fn repo_file(base_url: Option<&str>, signed: bool) -> String {
    let base = base_url.unwrap_or(PLACEHOLDER_URL);
    let checks = if signed {
        format!("gpgcheck=1\nrepo_gpgcheck=1\ngpgkey={base}/{KEY_FILE}\n")
    } else {
        "# UNSIGNED repository (no --sign-key): nothing is checked.\ngpgcheck=0\nrepo_gpgcheck=0\n"
            .to_string()
    };
    format!(
        "# Mattermost packages, written by mm-pkg repo add. Copy to /etc/yum.repos.d/.\n\
         [mattermost]\nname=Mattermost\nbaseurl={base}/{}\nenabled=1\n{checks}",
        super::yum::YUM_DIR
    )
}
