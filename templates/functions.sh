# --- Shared by every maintainer script of {{package}} (Debian and RPM alike). ---
# Safety rule for everything below: these scripts run as root, and the service account owns
# the data directory. Root never creates, copies, chowns or chmods anything inside a
# directory that account can write: such work runs as the account (mm_as_service), so a
# symlink it planted can only lead the account to what it could reach anyway. Root touches
# service-owned paths only with `chown -h` and `find -P`, which never follow symlinks.
MM_USER='{{layout.user}}'
MM_GROUP='{{layout.group}}'
MM_PREFIX='{{layout.prefix}}'
MM_DATA='{{layout.data_dir}}'
MM_DEFAULTS='{{layout.defaults_dir}}'
MM_BINARY='{{layout.server_binary}}'
MM_UNIT='{{layout.unit}}'
MM_VERSION_FILE='{{layout.version_file}}'
MM_SYSUSERS='{{layout.sysusers_file}}'

mm_say() {
    echo "{{package}}: $*"
}

# Is systemd running this machine? Not in a chroot, a container build, an image build or
# under DPKG_ROOT (as debhelper's snippets check): there, service actions are skipped.
mm_systemd_running() {
    [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]
}

# Runs "$@" as the service account, whenever a script works inside the data directory:
# util-linux's runuser (Debian and RHEL alike; its own ids and groups, no way back to root),
# or setpriv where runuser is missing, with a clean environment, from /. The account's own
# file operations follow symlinks (an admin's data/ on another disk keeps working) with the
# account's rights only. (runuser first: the setpriv of Debian 11 cannot drop capabilities
# on current kernels.)
mm_as_service() {
    (
        cd / || exit 1
        if command -v runuser >/dev/null 2>&1; then
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
                runuser -u "$MM_USER" -- "$@"
        else
            env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
                setpriv --reuid="$(id -u "$MM_USER")" --regid="$(id -g "$MM_USER")" \
                --init-groups --no-new-privs -- "$@"
        fi
    )
}

# Can the service account write directory $1? Decides who creates what in the data
# directory: the account where it can write, root only where it cannot.
mm_service_can_write() {
    mm_as_service test -w "$1"
}

# Create the system group and user unless getent finds them. Idempotent. Where
# systemd-sysusers exists it reads the same sysusers.d entry the package ships; elsewhere
# (chroots, minimal images) adduser or useradd create the same account.
mm_create_account() {
    if getent group "$MM_GROUP" >/dev/null && getent passwd "$MM_USER" >/dev/null; then
        return 0
    fi
    if [ -z "${DPKG_ROOT:-}" ] && command -v systemd-sysusers >/dev/null 2>&1 &&
        mm_sysusers_entry | systemd-sysusers --replace="$MM_SYSUSERS" - >/dev/null 2>&1 &&
        getent passwd "$MM_USER" >/dev/null; then
        return 0
    fi
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

# The sysusers.d entry the package ships as $MM_SYSUSERS (the account before its files exist).
mm_sysusers_entry() {
    cat <<'SYSUSERS'
{{{layout.sysusers_text}}}SYSUSERS
}

# Line $1 of the version file of the installed package (1: upstream version, 2: full
# package version, 3: package name), or "" when there is none.
mm_installed_field() {
    if [ -f "$MM_VERSION_FILE" ]; then
        sed -n "${1}p" "$MM_VERSION_FILE"
    fi
}

# The upstream version currently installed, or "unknown".
mm_installed_version() {
    v=$(mm_installed_field 1)
    echo "${v:-unknown}"
}

# The full package version currently installed (upstream-revision); packages of older mm-pkg
# versions recorded only the upstream version.
mm_installed_package_version() {
    v=$(mm_installed_field 2)
    echo "${v:-$(mm_installed_version)}"
}

# Is the other edition ({{other_package}}) installed now, owning the shared files (the
# version file names it)? Then this package's removal leaves the shared things alone: the
# unit's enablement, client/plugins, the binary's permissions, the account and the data.
mm_other_edition_installed() {
    [ "$(mm_installed_field 3)" = '{{other_package}}' ]
}

# Before package files are replaced: keep a copy of the live config beside it, named after
# the package version being replaced; the newest {{layout.config_backups}} such copies are
# kept. All of it runs as the service account, inside its own config directory.
mm_backup_config() {
    getent passwd "$MM_USER" >/dev/null || return 0
    [ -d "$MM_DATA/config" ] || return 0
    name="config.json.bak-$(mm_installed_package_version)-$(date -u +%Y%m%dT%H%M%SZ)"
    # shellcheck disable=SC2016
    if ! mm_as_service sh -c '
        set -eu
        cd "$1"
        [ -f config.json ] || exit 0
        cp -p config.json "$2"
        echo "{{package}}: saved $1/config.json as $1/$2"
        ls -1 | grep "^config\.json\.bak-.*-[0-9]\{8\}T[0-9]\{6\}Z$" |
            sed "s/^\(.*-\)\([0-9TZ]*\)$/\2 \1\2/" | sort -r | tail -n +$(($3 + 1)) |
            cut -d " " -f 2- | while IFS= read -r old; do rm -f -- "$old"; done
    ' sh "$MM_DATA/config" "$name" {{layout.config_backups}}; then
        mm_say "warning: $MM_USER could not copy $MM_DATA/config/config.json; no backup was taken" >&2
    fi
}

# Is directory $1 empty (or missing)?
mm_dir_empty() {
    [ ! -d "$1" ] || [ -z "$(ls -A "$1")" ]
}

# Create the data directory itself, if missing, as the service account's: its parent is
# root's, so nobody else can race root here.
mm_make_data_root() {
    if [ ! -e "$MM_DATA" ] && [ ! -L "$MM_DATA" ]; then
        mkdir -m {{layout.data_dir_mode}} "$MM_DATA"
        chown -h "$MM_USER:$MM_GROUP" "$MM_DATA"
    fi
}

# Where the preinst records what a migration moved, so that postrm abort-install (a failed
# unpack) can put it back: root's own 0700 directory, never the data directory.
MM_STATE_DIR='/var/lib/mm-pkg'
MM_UNDO="$MM_STATE_DIR/migration-undo"

# Appends one step (fields separated by tabs) to the undo record.
mm_record_undo() {
    if [ ! -d "$MM_STATE_DIR" ]; then
        mkdir -m 0700 "$MM_STATE_DIR"
    fi
    printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >> "$MM_UNDO"
}

# Before the first packaged install: bring an existing installation into the standard layout.
# Three layouts exist in the wild:
#   a. everything inside a real directory $MM_PREFIX (config/, data/, logs/, plugins/ in it),
#      as upstream's tarball instructions leave it;
#   b. $MM_PREFIX a symlink to a versioned directory whose config, data, logs and plugins
#      are symlinks (usually into $MM_DATA);
#   c. Mattermost's own .deb (also named {{layout.user}}), which this package upgrades
#      ($1 = takeover): like a, but dpkg owns the program files, so they stay for dpkg to
#      replace and are given back to root first (that package gives them to the account).
# Everything is checked first; if anything cannot be moved safely, nothing is changed and the
# script fails, so the package manager stops before unpacking. Moves are renames (`mv -T`)
# and links are made with `ln -sT`: neither follows a symlink at the destination. Each step
# is recorded for mm_undo_migration.
mm_migrate_hand_made() {
    mode=${1:-hand-made}
    [ -f "$MM_VERSION_FILE" ] && return 0       # already an installation of this packaging
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
            if [ ! -e "$dst" ] && [ ! -L "$dst" ]; then
                mm_dir_empty "$src" && [ "$mode" != takeover ] && continue
                plan="$plan move:$dir"
            elif mm_dir_empty "$src"; then
                [ "$mode" = takeover ] && plan="$plan drop:$dir"
            elif [ -d "$dst" ] && [ ! -L "$dst" ] && mm_dir_empty "$dst"; then
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

    mm_create_account
    rm -f "$MM_UNDO"
    if [ ! -e "$MM_DATA" ] && [ ! -L "$MM_DATA" ]; then
        mm_record_undo created "$MM_DATA"
    fi
    mm_make_data_root
    if [ "$mode" = takeover ]; then
        notes="{{package}} took over the installation of Mattermost's own package on $stamp:"
    else
        notes="{{package}} moved a hand-made installation into the packaged layout on $stamp:"
    fi
    for step in $plan; do
        dir=${step#*:}
        src="$old_root/$dir"
        dst="$MM_DATA/$dir"
        case "$step" in
            link:*)
                ln -sT "$(readlink -f "$src")" "$dst"
                mm_record_undo link "$dst"
                notes="$notes
  $dst -> $(readlink -f "$src") (the data stays where $src pointed)"
                ;;
            replace:*)
                rmdir "$dst"
                mv -T "$src" "$dst"
                mm_record_undo move "$src" "$dst"
                notes="$notes
  moved $src to $dst"
                ;;
            move:*)
                mv -T "$src" "$dst"
                mm_record_undo move "$src" "$dst"
                notes="$notes
  moved $src to $dst"
                ;;
            drop:*)
                rmdir "$src"
                mm_record_undo dropped "$src"
                ;;
        esac
    done
    if [ "$mode" = takeover ]; then
        # Only program files are left; the other package gave them to the account.
        find -P "$MM_PREFIX" -xdev -exec chown -h root:root {} +
        notes="$notes
  the program files in $MM_PREFIX are replaced by this package's"
    elif [ -L "$MM_PREFIX" ]; then
        rm "$MM_PREFIX"
        mm_record_undo unlinked "$MM_PREFIX" "$old_root"
        notes="$notes
  removed the symlink $MM_PREFIX -> $old_root; $old_root itself is left for you to delete"
    else
        mv -T "$MM_PREFIX" "$MM_PREFIX.hand-made-$stamp"
        mm_record_undo aside "$MM_PREFIX" "$MM_PREFIX.hand-made-$stamp"
        notes="$notes
  moved the old program files to $MM_PREFIX.hand-made-$stamp; delete it once the package runs"
    fi
    if [ -f "/etc/systemd/system/$MM_UNIT" ] && [ ! -L "/etc/systemd/system/$MM_UNIT" ]; then
        notes="$notes
  note: /etc/systemd/system/$MM_UNIT (yours) overrides the packaged unit; remove it to use the package's"
    fi
    printf '%s\n' "$notes"
    mm_write_data_file "mm-pkg-migration-$stamp.log" "$notes"
    mm_record_undo note "$MM_DATA/mm-pkg-migration-$stamp.log"
}

# After a successful configure: the migration is final.
mm_forget_migration() {
    rm -f "$MM_UNDO"
    rmdir "$MM_STATE_DIR" 2>/dev/null || true
}

# postrm abort-install / abort-upgrade: the unpack after a migration failed. Put every moved
# directory back, newest step first; whatever cannot go back safely (its old place is taken
# again) stays where the migration put it, and the message says where.
mm_undo_migration() {
    [ -f "$MM_UNDO" ] || return 0
    failed=0
    tac "$MM_UNDO" > "$MM_UNDO.reverse"
    while IFS="$(printf '\t')" read -r kind a b; do
        case "$kind" in
            note)
                [ -L "$a" ] || rm -f "$a"
                ;;
            move)
                if [ ! -e "$a" ] && [ ! -L "$a" ] && mv -T "$b" "$a"; then
                    mm_say "put $b back to $a"
                else
                    mm_say "left $b where the migration moved it (it was $a)" >&2
                    failed=1
                fi
                ;;
            link)
                [ -L "$a" ] && rm "$a"
                ;;
            dropped)
                mkdir "$a" 2>/dev/null || true
                ;;
            aside|unlinked)
                # dpkg has removed what it unpacked; empty directories may be left.
                if [ -d "$a" ] && [ ! -L "$a" ]; then
                    find -P "$a" -depth -type d -empty -delete
                fi
                if [ -e "$a" ] || [ -L "$a" ]; then
                    mm_say "$a is in use again; the old installation stays in ${b}" >&2
                    failed=1
                elif [ "$kind" = aside ] && mv -T "$b" "$a"; then
                    mm_say "put $b back to $a"
                elif [ "$kind" = unlinked ] && ln -sT "$b" "$a"; then
                    mm_say "restored the symlink $a -> $b"
                fi
                ;;
            created)
                rmdir "$a" 2>/dev/null || true
                ;;
        esac
    done < "$MM_UNDO.reverse"
    rm -f "$MM_UNDO.reverse"
    if [ "$failed" = 0 ]; then
        mm_forget_migration
        mm_say "the installation is as it was before this package's preinst"
    else
        mm_say "what the migration did is listed in $MM_UNDO" >&2
    fi
}

# Write text $2 to a new file $1 directly in the data directory: as the service account
# where it can write there, else (a data directory the admin gave to someone else) as root.
mm_write_data_file() {
    if mm_service_can_write "$MM_DATA"; then
        # shellcheck disable=SC2016
        printf '%s\n' "$2" | mm_as_service sh -c 'umask 027; cat > "$1"' sh "$MM_DATA/$1" ||
            mm_say "warning: could not write $MM_DATA/$1" >&2
    elif [ ! -e "$MM_DATA/$1" ] && [ ! -L "$MM_DATA/$1" ]; then
        printf '%s\n' "$2" > "$MM_DATA/$1"
    fi
}

# The data directory and the directories the symlinks in $MM_PREFIX point to. An existing
# one keeps whatever owner, mode or symlink the admin gave it. Below the data directory
# the account creates them; only where it cannot write (the admin gave the data directory
# to someone else) root does, and hands them over with chown -h.
mm_make_data_dirs() {
    mm_make_data_root
    if mm_service_can_write "$MM_DATA"; then
        # shellcheck disable=SC2016
        mm_as_service sh -c '
            for dir in "$@"; do
                [ -d "$dir" ] || mkdir -m {{layout.data_dir_mode}} "$dir" ||
                    echo "{{package}}: warning: cannot create $dir" >&2
            done
        ' sh{{#each layout.linked_dirs}} "$MM_DATA/{{this}}"{{/each}}
    else
        for dir in{{#each layout.linked_dirs}} "$MM_DATA/{{this}}"{{/each}}; do
            if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
                mkdir -m {{layout.data_dir_mode}} "$dir"
                chown -h "$MM_USER:$MM_GROUP" "$dir"
            fi
        done
    fi
}

# Copy each default file the release ships (config/config.json, ...) into the data directory
# when no file of that name is there yet, as the service account. Existing files are never
# touched.
mm_seed_defaults() {
    [ -d "$MM_DEFAULTS" ] || return 0
    # shellcheck disable=SC2016
    (cd "$MM_DEFAULTS" && find -P . -type f) | sed 's|^\./||' | mm_as_service sh -c '
        while IFS= read -r rel; do
            target="$2/$rel"
            if [ ! -e "$target" ] && [ ! -L "$target" ]; then
                if (umask 027 && mkdir -p "$(dirname "$target")") &&
                    (umask 077 && cp "$1/$rel" "$target" && chmod {{layout.config_file_mode}} "$target"); then
                    echo "{{package}}: installed default $target"
                else
                    echo "{{package}}: warning: could not install the default $target" >&2
                fi
            fi
        done
    ' sh "$MM_DEFAULTS" "$MM_DATA"
}

# Give the server the files it rewrites at run time and the webapp plugin directory. Their
# directories are root's; chown -h never follows a link.
mm_own_server_files() {
    for path in '{{layout.client_plugins}}'{{#each layout.server_owned_files}} '{{this}}'{{/each}}; do
        if [ -e "$path" ] && [ ! -L "$path" ]; then
            chown -h "$MM_USER:$MM_GROUP" "$path"
        fi
    done
}

{{#if deb}}
# Is the dpkg-statoverride entry $1 (`user group mode path`, as --list prints it) the one
# this package makes: root, $MM_GROUP, {{layout.server_binary_mode}}?
mm_is_package_override() {
    # shellcheck disable=SC2086
    set -- $1
    [ "$#" -eq 4 ] && [ "$1" = root ] && [ "$2" = "$MM_GROUP" ] &&
        [ "$((0$3))" -eq "$((0{{layout.server_binary_mode}}))" ]
}

# Make the server binary root:$MM_GROUP {{layout.server_binary_mode}} with dpkg-statoverride (dpkg then
# applies it on every unpack), so only root and the service account can run it: it can
# bind ports below 1024. Returns 1 when the admin has an override of their own (any other
# owner or mode): it stays as it is.
mm_binary_permissions() {
    current=$(dpkg-statoverride --list "$MM_BINARY" 2>/dev/null || true)
    if [ -z "$current" ]; then
        dpkg-statoverride --update --add root "$MM_GROUP" {{layout.server_binary_mode}} "$MM_BINARY"
    elif ! mm_is_package_override "$current"; then
        return 1
    fi
}

# On purge: drop the package's override (never an admin's, never while the other edition
# uses the binary).
mm_remove_binary_override() {
    mm_other_edition_installed && return 0
    if mm_is_package_override "$(dpkg-statoverride --list "$MM_BINARY" 2>/dev/null || true)"; then
        dpkg-statoverride --remove "$MM_BINARY" >/dev/null 2>&1 || true
    fi
}
{{else}}
# The package itself installs the server binary root:$MM_GROUP {{layout.server_binary_mode}} (%attr).
mm_binary_permissions() {
    return 0
}
{{/if}}

# Let the server bind ports below 1024. Replacing the binary drops the capability, so this
# runs on every install and upgrade, unless the admin took over the file's permissions with
# dpkg-statoverride.
mm_setcap() {
    if ! mm_binary_permissions; then
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

# Everything that makes an unpacked package a working installation. Notes first whether an
# admin's config was already there (then no fresh-install text is printed).
mm_configure_files() {
    MM_HAD_CONFIG=
    if [ -e "$MM_DATA/config/config.json" ]; then
        MM_HAD_CONFIG=yes
    fi
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

# After configure: restart a running service; on a fresh install of a stopped one without
# an existing config, say what to do next.
mm_after_configure() {
    if mm_systemd_running && systemctl is-active --quiet "$MM_UNIT"; then
        mm_restart_if_running
    elif [ "$1" = fresh ] && [ -z "${MM_HAD_CONFIG:-}" ]; then
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
  The unit lets the server write only below $MM_DATA: for a file or log directory elsewhere,
  add it with \`systemctl edit $MM_UNIT\` ([Service] ReadWritePaths=/that/directory).
NEXT
}

# After removal: leftovers the package made outside the data directory. The webapp plugin
# bundles in client/plugins are unpacked by the server from the plugins in the data directory,
# which stays. Nothing is removed while the other edition is installed.
mm_remove_leftovers() {
    if mm_other_edition_installed; then
        mm_say "{{other_package}} is installed; its files, the account and $MM_DATA stay"
        return 0
    fi
    rm -rf --one-file-system '{{layout.client_plugins}}'
    for dir in "$MM_PREFIX/client" "$MM_PREFIX"; do
        rmdir "$dir" 2>/dev/null || true
    done
    mm_say "$MM_DATA (config, data, logs, plugins) remains; delete it yourself if you no longer need it"
}
# --- end of shared functions ---
