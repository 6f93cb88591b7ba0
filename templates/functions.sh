# --- Shared by every maintainer script of {{package}} (Debian and RPM alike). ---
MM_USER='{{layout.user}}'
MM_GROUP='{{layout.group}}'
MM_PREFIX='{{layout.prefix}}'
MM_DATA='{{layout.data_dir}}'
MM_DEFAULTS='{{layout.defaults_dir}}'
MM_BINARY='{{layout.server_binary}}'
MM_UNIT='{{layout.unit}}'
MM_VERSION_FILE='{{layout.version_file}}'

mm_say() {
    echo "{{package}}: $*"
}

# Is systemd running this machine? Not in a chroot, a container build or an image build:
# there, service actions are skipped.
mm_systemd_running() {
    [ -d /run/systemd/system ]
}

# Create the system group and user unless getent finds them. Idempotent.
mm_create_account() {
    if ! getent group "$MM_GROUP" >/dev/null; then
{{#if deb}}
        addgroup --system --quiet "$MM_GROUP"
{{else}}
        groupadd --system "$MM_GROUP"
{{/if}}
    fi
    if ! getent passwd "$MM_USER" >/dev/null; then
{{#if deb}}
        adduser --system --quiet --ingroup "$MM_GROUP" --home "$MM_DATA" --no-create-home \
            --shell /usr/sbin/nologin --gecos 'Mattermost server' "$MM_USER"
{{else}}
        useradd --system --gid "$MM_GROUP" --home-dir "$MM_DATA" --no-create-home \
            --shell /sbin/nologin --comment 'Mattermost server' "$MM_USER"
{{/if}}
    fi
}

# The upstream version currently installed, or "unknown".
mm_installed_version() {
    if [ -f "$MM_VERSION_FILE" ]; then
        head -n 1 "$MM_VERSION_FILE"
    else
        echo unknown
    fi
}

# Before package files are replaced: keep a copy of the live config next to it.
mm_backup_config() {
    config="$MM_DATA/config/config.json"
    if [ -f "$config" ]; then
        backup="$config.bak-$(mm_installed_version)-$(date -u +%Y%m%dT%H%M%SZ)"
        cp -p "$config" "$backup"
        mm_say "saved $config as $backup"
    fi
}

# Create a directory with owner and mode only if it does not exist yet: an existing one keeps
# whatever owner and mode the admin gave it. Never recursive.
mm_make_dir() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1"
        chown "$MM_USER:$MM_GROUP" "$1"
        chmod {{layout.data_dir_mode}} "$1"
    fi
}

# The data directories the symlinks in $MM_PREFIX point to.
mm_make_data_dirs() {
    mm_make_dir "$MM_DATA"
{{#each layout.linked_dirs}}
    mm_make_dir "$MM_DATA/{{this}}"
{{/each}}
}

# Copy each default file the release ships (config/config.json, ...) into the data directory
# when no file of that name is there yet. Existing files are never touched.
mm_seed_defaults() {
    [ -d "$MM_DEFAULTS" ] || return 0
    (cd "$MM_DEFAULTS" && find . -type f) | sed 's|^\./||' | while IFS= read -r rel; do
        target="$MM_DATA/$rel"
        if [ ! -e "$target" ] && [ ! -L "$target" ]; then
            mm_make_dir "$(dirname "$target")"
            cp "$MM_DEFAULTS/$rel" "$target"
            chown "$MM_USER:$MM_GROUP" "$target"
            chmod {{layout.config_file_mode}} "$target"
            mm_say "installed default $target"
        fi
    done
}

# Give the server the files it rewrites at run time and the webapp plugin directory.
mm_own_server_files() {
    for path in '{{layout.client_plugins}}'{{#each layout.server_owned_files}} '{{this}}'{{/each}}; do
        if [ -e "$path" ]; then
            chown "$MM_USER:$MM_GROUP" "$path"
        fi
    done
}

# Let the server bind ports below 1024. Replacing the binary drops the capability, so this
# runs on every install and upgrade, unless the admin took over the file's permissions with
# dpkg-statoverride.
mm_setcap() {
    if command -v dpkg-statoverride >/dev/null 2>&1 && dpkg-statoverride --list "$MM_BINARY" >/dev/null 2>&1; then
        mm_say "dpkg-statoverride lists $MM_BINARY; leaving its capabilities alone"
        return 0
    fi
    if ! command -v setcap >/dev/null 2>&1; then
        mm_say "warning: setcap not found; $MM_BINARY cannot bind ports below 1024 outside systemd" >&2
        return 0
    fi
    if ! setcap cap_net_bind_service=+ep "$MM_BINARY"; then
        mm_say "warning: setcap failed (does this filesystem support capabilities?); the unit still grants CAP_NET_BIND_SERVICE" >&2
    fi
}

# Everything that makes an unpacked package a working installation.
mm_configure_files() {
    mm_make_data_dirs
    mm_seed_defaults
    mm_own_server_files
    mm_setcap
}

# Restart the service only if it is running now.
mm_restart_if_running() {
    if mm_systemd_running && systemctl is-active --quiet "$MM_UNIT"; then
{{#if deb}}
        deb-systemd-invoke restart "$MM_UNIT" >/dev/null || true
{{else}}
        systemctl restart "$MM_UNIT" >/dev/null 2>&1 || :
{{/if}}
    fi
}

mm_next_steps() {
    cat <<NEXT
{{package}}: Mattermost {{version}} is installed; the service is enabled but not started,
because it needs a database first. Next steps:
  1. Create a PostgreSQL database and user for Mattermost.
  2. Edit $MM_DATA/config/config.json: set SqlSettings.DataSource and ServiceSettings.SiteURL.
  3. Start it:   systemctl start $MM_UNIT
  Logs: journalctl -u $MM_UNIT and $MM_DATA/logs/. Admin CLI: mmctl.
NEXT
}

# After removal: leftovers the package made outside the data directory. The webapp plugin
# bundles in client/plugins are unpacked by the server from the plugins in the data directory,
# which stays.
mm_remove_leftovers() {
    rm -rf '{{layout.client_plugins}}'
    for dir in "$MM_PREFIX/client" "$MM_PREFIX"; do
        rmdir "$dir" 2>/dev/null || true
    done
    mm_say "$MM_DATA (config, data, logs, plugins) remains; delete it yourself if you no longer need it"
}
# --- end of shared functions ---
