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

# Is directory $1 empty (or missing)?
mm_dir_empty() {
    [ ! -d "$1" ] || [ -z "$(ls -A "$1")" ]
}

# Before the first packaged install: bring a hand-made installation into the standard layout.
# Two layouts exist in the wild:
#   a. everything inside a real directory $MM_PREFIX (config/, data/, logs/, plugins/ in it),
#      as upstream's tarball instructions leave it;
#   b. $MM_PREFIX a symlink to a versioned directory whose config, data, logs and plugins
#      are symlinks (usually into $MM_DATA).
# Everything is checked first; if anything cannot be moved safely, nothing is changed and the
# script fails, so the package manager stops before unpacking.
mm_migrate_hand_made() {
    [ -f "$MM_VERSION_FILE" ] && return 0       # already a packaged installation
    [ -e "$MM_PREFIX" ] || [ -L "$MM_PREFIX" ] || return 0
    old_root=$(readlink -f "$MM_PREFIX")
    [ -d "$old_root" ] || return 0
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    plan=""
    problems=""
    for dir in{{#each layout.linked_dirs}} {{this}}{{/each}}; do
        src="$old_root/$dir"
        dst="$MM_DATA/$dir"
        if [ -L "$src" ]; then
            target=$(readlink -f "$src")
            if [ "$target" = "$(readlink -f "$dst")" ]; then
                continue                          # already points at the data directory
            elif [ -e "$dst" ] || [ -L "$dst" ]; then
                mm_dir_empty "$target" && continue
                problems="$problems
  $src points to $target, but $dst exists as well"
            else
                plan="$plan link:$dir"
            fi
        elif [ -d "$src" ]; then
            if mm_dir_empty "$src"; then
                continue
            elif [ ! -e "$dst" ] && [ ! -L "$dst" ]; then
                plan="$plan move:$dir"
            elif mm_dir_empty "$dst"; then
                plan="$plan replace:$dir"
            elif diff -r -q "$src" "$dst" >/dev/null 2>&1; then
                continue                          # the same files are already in place
            else
                problems="$problems
  $src and $dst both hold files, and they differ:
$(diff -r -q "$src" "$dst" 2>/dev/null | head -n 3 | sed 's/^/    /')"
            fi
        fi
    done
    if [ -n "$problems" ]; then
        cat >&2 <<PROBLEMS
{{package}}: cannot move the existing Mattermost installation in $MM_PREFIX into the
packaged layout safely; nothing was changed:$problems
Decide which files to keep, put them in $MM_DATA/<dir>/ (config, data, logs, plugins),
remove the other copy, and install the package again.
PROBLEMS
        exit 1
    fi

    notes="{{package}} moved a hand-made installation into the packaged layout on $stamp:"
    mkdir -p "$MM_DATA"
    for step in $plan; do
        dir=${step#*:}
        src="$old_root/$dir"
        dst="$MM_DATA/$dir"
        case "$step" in
            link:*)
                ln -s "$(readlink -f "$src")" "$dst"
                notes="$notes
  $dst -> $(readlink -f "$src") (the data stays where $src pointed)"
                ;;
            replace:*)
                rmdir "$dst"
                mv "$src" "$dst"
                notes="$notes
  moved $src to $dst"
                ;;
            move:*)
                mv "$src" "$dst"
                notes="$notes
  moved $src to $dst"
                ;;
        esac
    done
    if [ -L "$MM_PREFIX" ]; then
        rm "$MM_PREFIX"
        notes="$notes
  removed the symlink $MM_PREFIX -> $old_root; $old_root itself is left for you to delete"
    else
        mv "$MM_PREFIX" "$MM_PREFIX.hand-made-$stamp"
        notes="$notes
  moved the old program files to $MM_PREFIX.hand-made-$stamp; delete it once the package runs"
    fi
    if [ -f "/etc/systemd/system/$MM_UNIT" ] && [ ! -L "/etc/systemd/system/$MM_UNIT" ]; then
        notes="$notes
  note: /etc/systemd/system/$MM_UNIT (yours) overrides the packaged unit; remove it to use the package's"
    fi
    printf '%s\n' "$notes" | tee -a "$MM_DATA/mm-pkg-migration-$stamp.log"
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

# After configure: restart a running service; on a fresh install of a stopped one, say what
# to do next.
mm_after_configure() {
    if mm_systemd_running && systemctl is-active --quiet "$MM_UNIT"; then
        mm_restart_if_running
    elif [ "$1" = fresh ]; then
        mm_next_steps
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
