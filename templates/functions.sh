# --- Shared by every maintainer script of {{package}} (Debian and RPM alike). ---
# Safety rule for everything below: these scripts run as root, and the service account owns
# the data directory. Root never creates, copies, chowns or chmods anything inside a
# directory that account can write: such work runs as the account (mm_as_service), so a
# symlink it planted can only lead the account to what it could reach anyway. Root touches
# service-owned paths only with `chown -h` and `find -P`, which never follow symlinks.
# Variables: the MM_ ones in capitals are shared by every function; a function that needs
# variables of its own runs in a subshell, `name() ( ... )`, so they end with it and no
# function can clobber another's.
MM_USER='{{layout.user}}'
MM_GROUP='{{layout.group}}'
MM_PREFIX='{{layout.prefix}}'
MM_DATA='{{layout.data_dir}}'
MM_DEFAULTS='{{layout.defaults_dir}}'
MM_BINARY='{{layout.server_binary}}'
MM_UNIT='{{layout.unit}}'
MM_VERSION_FILE='{{layout.version_file}}'
MM_SYSUSERS='{{layout.sysusers_file}}'
MM_ENV_FILE='{{layout.env_file}}'

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
mm_as_service() (
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

# Is directory $1 the service account's to work in: does the account own it, or can it
# write there? Decides who creates what in the data directory: the account then, root only
# in a directory the admin gave to someone else. Ownership counts on its own: an owner can
# take away its own write bit at any moment and give it back just as fast, so a read-only
# directory of the account's is still no place for root's mkdir, chown or `>`.
mm_service_can_write() {
    [ "$(stat -L -c %u "$1" 2>/dev/null)" = "$(id -u "$MM_USER")" ] ||
        mm_as_service test -w "$1"
}

# May root create files directly in directory $1: does root own it, with no write bit for
# group or others? Anyone else who can write there could swap what root just made (a new
# directory for a hard link to a root file) before root's chown.
mm_root_only_dir() (
    owner_mode=$(stat -L -c '%u %a' "$1" 2>/dev/null) || exit 1
    [ "${owner_mode%% *}" = 0 ] && [ $((0${owner_mode#* } & 022)) -eq 0 ]
)

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

# Is a package of this packaging installed in $MM_PREFIX? Its version file says so, but
# only where the service account cannot have written it: a regular file of root's in a
# directory of root's that neither group nor others can write. Upstream's tarball
# instructions and Mattermost's own .deb give $MM_PREFIX to the account, which could fake
# the file so that the migration is skipped and dpkg or rpm unpacks the program files root
# runs (mmctl, the binary given capabilities) into directories the account owns.
mm_is_packaged() {
    [ -f "$MM_VERSION_FILE" ] && [ ! -L "$MM_VERSION_FILE" ] || return 1
    [ "$(stat -c %u "$MM_VERSION_FILE")" = 0 ] && [ "$(stat -L -c %u "$MM_PREFIX")" = 0 ] &&
        [ $((0$(stat -L -c %a "$MM_PREFIX") & 022)) -eq 0 ]
}

# Line $1 of the version file of the installed package (1: upstream version, 2: full
# package version, 3: package name), or "" when there is none.
mm_installed_field() {
    if mm_is_packaged; then
        sed -n "${1}p" "$MM_VERSION_FILE"
    fi
}

# The upstream version currently installed, or "unknown".
mm_installed_version() (
    version=$(mm_installed_field 1)
    echo "${version:-unknown}"
)

# The full package version currently installed (upstream-revision); packages of older mm-pkg
# versions recorded only the upstream version.
mm_installed_package_version() (
    version=$(mm_installed_field 2)
    echo "${version:-$(mm_installed_version)}"
)

# Is the other edition ({{other_package}}) installed now, owning the shared files (the
# version file names it)? Then this package's removal leaves the shared things alone: the
# unit's enablement, client/plugins, the binary's permissions, the account and the data.
mm_other_edition_installed() {
    [ "$(mm_installed_field 3)" = '{{other_package}}' ]
}

# The value of MM_CONFIG in $MM_ENV_FILE (its last setting, without quotes), or nothing. The
# file is root's and is read, never run.
mm_config_setting() (
    [ -f "$MM_ENV_FILE" ] || exit 0
    value=$(sed -n 's/^[[:space:]]*MM_CONFIG[[:space:]]*=[[:space:]]*//p' "$MM_ENV_FILE" | tail -n 1)
    value=${value%"${value##*[![:space:]]}"}
    case "$value" in
        \"*\") value=${value#\"} && value=${value%\"} ;;
        \'*\') value=${value#\'} && value=${value%\'} ;;
    esac
    printf '%s\n' "$value"
)

# Does the server keep its configuration somewhere else than config.json in the data
# directory? MM_CONFIG in $MM_ENV_FILE names a database (what Mattermost clusters use) or
# another file. Then the scripts never seed or back up config.json, and the unit never
# copies it. Prints why, never the value (a DSN holds a password).
mm_config_elsewhere() (
    setting=$(mm_config_setting)
    case "$setting" in
        '' | "$MM_DATA/config/config.json" | "$MM_PREFIX/config/config.json" | config.json)
            exit 1
            ;;
        postgres://* | postgresql://* | mysql://*)
            echo "MM_CONFIG in $MM_ENV_FILE names a database: the configuration lives there"
            ;;
        *)
            echo "MM_CONFIG in $MM_ENV_FILE names another file: the configuration lives there"
            ;;
    esac
)

# Before package files are replaced: keep a copy of the live config beside it, named after
# the package version being replaced; the newest {{layout.config_backups}} such copies are
# kept. All of it runs as the service account, inside its own config directory.
mm_backup_config() (
    getent passwd "$MM_USER" >/dev/null || exit 0
    [ -d "$MM_DATA/config" ] || exit 0
    if elsewhere=$(mm_config_elsewhere); then
        mm_say "$elsewhere; config.json is not backed up (back up the configuration where it is)"
        exit 0
    fi
    name="config.json.bak-$(mm_installed_package_version)-$(date -u +%Y%m%dT%H%M%SZ)"
    # The script runs as the service account and expands its own arguments:
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
)

# Is directory $1 empty (or missing)?
mm_dir_empty() {
    [ ! -d "$1" ] || [ -z "$(ls -A "$1")" ]
}

# The directory the program and the data directory live in (/opt), should the system lack
# it: Debian's base-files creates it without listing it, and the .deb does not list it either
# (its purge would try to remove it, and warn that it is not empty).
mm_make_prefix_parent() {
    [ -d "${MM_PREFIX%/*}" ] || mkdir -m 0755 "${MM_PREFIX%/*}"
}

# Create the data directory itself, if missing, as the service account's: its parent is
# root's, so nobody else can race root here.
mm_make_data_root() {
    if [ ! -e "$MM_DATA" ] && [ ! -L "$MM_DATA" ]; then
        mkdir -m {{layout.data_dir_mode}} "$MM_DATA"
        chown -h "$MM_USER:$MM_GROUP" "$MM_DATA"
    fi
}

{{> migration.sh}}
# Write text $2 to a new file $1 directly in the data directory: as the service account
# where it can write there, else (a data directory the admin gave to someone else) as root.
mm_write_data_file() {
    if mm_service_can_write "$MM_DATA"; then
        # The script runs as the service account and expands its own argument:
        # shellcheck disable=SC2016
        printf '%s\n' "$2" | mm_as_service sh -c 'umask 027; cat > "$1"' sh "$MM_DATA/$1" ||
            mm_say "warning: could not write $MM_DATA/$1" >&2
    elif [ -e "$MM_DATA/$1" ] || [ -L "$MM_DATA/$1" ]; then
        return 0
    elif mm_root_only_dir "$MM_DATA"; then
        printf '%s\n' "$2" > "$MM_DATA/$1"
    elif command -v perl >/dev/null 2>&1; then
        # Whoever may write there could plant a link (to a device, a FIFO, a root file)
        # meanwhile: the file is created exclusively and never through a link (O_EXCL,
        # O_NOFOLLOW; the shell's noclobber still opens a link to a device or FIFO). The
        # Perl code reads its own variables:
        # shellcheck disable=SC2016
        printf '%s\n' "$2" | perl -e '
            use Fcntl qw(O_WRONLY O_CREAT O_EXCL O_NOFOLLOW);
            sysopen(my $fh, $ARGV[0], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0640)
                or die "cannot create $ARGV[0]: $!\n";
            local $/;
            print {$fh} <STDIN> or die "cannot write $ARGV[0]: $!\n";
            close($fh) or die "cannot write $ARGV[0]: $!\n";
        ' "$MM_DATA/$1" || mm_say "warning: could not write $MM_DATA/$1" >&2
    else
        mm_say "warning: $MM_DATA belongs to someone else than root and $MM_USER; not writing $1 there" >&2
    fi
}

# Create directory $1 in the data directory as root and give it to the service account,
# where the account cannot write. In a root-only data directory that is mkdir and chown -h.
# Where a third user can write, that user could swap the new directory for a hard link to a
# root file before chown: the directory is then opened once, as a directory and not through
# a link, checked to be root's new one, and handed over through that descriptor (perl,
# Essential on Debian); without perl the admin is told to create it.
mm_root_mkdir_for_service() {
    if mm_root_only_dir "$MM_DATA"; then
        mkdir -m {{layout.data_dir_mode}} "$1"
        chown -h "$MM_USER:$MM_GROUP" "$1"
    elif command -v perl >/dev/null 2>&1; then
        # The Perl code reads its own variables:
        # shellcheck disable=SC2016
        perl -e '
            use Fcntl qw(O_RDONLY O_DIRECTORY O_NOFOLLOW);
            my ($dir, $mode, $uid, $gid) = @ARGV;
            mkdir($dir, oct($mode)) or die "cannot create $dir: $!\n";
            sysopen(my $fh, $dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
                or die "$dir was replaced while it was created: $!\n";
            my @st = stat($fh);
            # Owned by root, no subdirectory, the mode just given: the directory just made,
            # not another root directory moved here (lost+found of a mount is 0700).
            die "$dir was replaced while it was created\n"
                if $st[4] != 0 || $st[3] != 2
                || ($st[2] & 07777) != (oct($mode) & ~umask() & 07777);
            chown($uid, $gid, $fh) or die "cannot give $dir to the service account: $!\n";
        ' "$1" {{layout.data_dir_mode}} "$(id -u "$MM_USER")" "$(getent group "$MM_GROUP" | cut -d: -f3)" ||
            mm_say "warning: could not create $1 for $MM_USER" >&2
    else
        mm_say "warning: $MM_DATA belongs to someone else than root and $MM_USER: create $1 yourself, owned by $MM_USER" >&2
    fi
}

# The data directory and the directories the symlinks in $MM_PREFIX point to. An existing
# one keeps whatever owner, mode or symlink the admin gave it. Below the data directory
# the account creates them; only where it cannot write (the admin gave the data directory
# to someone else) root does (mm_root_mkdir_for_service).
mm_make_data_dirs() (
    mm_make_data_root
    if mm_service_can_write "$MM_DATA"; then
        # The script runs as the service account and expands its own arguments:
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
                mm_root_mkdir_for_service "$dir"
            fi
        done
    fi
)

# Copy each default file the release ships (config/config.json, ...) into the data directory
# when no file of that name is there yet, as the service account. Existing files are never
# touched. config.json is left out when the server keeps its configuration elsewhere
# (MM_CONFIG): a file there would mislead whoever reads it.
mm_seed_defaults() (
    [ -d "$MM_DEFAULTS" ] || exit 0
    skip=
    if elsewhere=$(mm_config_elsewhere); then
        mm_say "$elsewhere; $MM_DATA/config/config.json is not installed"
        skip=config/config.json
    fi
    # The script runs as the service account and expands its own arguments:
    # shellcheck disable=SC2016
    (cd "$MM_DEFAULTS" && find -P . -type f) | sed 's|^\./||' | grep -vxF "${skip:-/}" |
        mm_as_service sh -c '
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
)

# Give the server the files it rewrites at run time and the webapp plugin directory. Their
# directories are root's; chown -h never follows a link.
mm_own_server_files() (
    for path in '{{layout.client_plugins}}'{{#each layout.server_owned_files}} '{{this}}'{{/each}}; do
        if [ -e "$path" ] && [ ! -L "$path" ]; then
            chown -h "$MM_USER:$MM_GROUP" "$path"
        fi
    done
)

{{#if deb}}
# Is the dpkg-statoverride entry $1 (`user group mode path`, as --list prints it) the one
# this package makes: root, $MM_GROUP, {{layout.server_binary_mode}}?
mm_is_package_override() {
    # The entry is split into its four fields on purpose:
    # shellcheck disable=SC2086
    set -- $1
    [ "$#" -eq 4 ] && [ "$1" = root ] && [ "$2" = "$MM_GROUP" ] &&
        [ "$((0$3))" -eq "$((0{{layout.server_binary_mode}}))" ]
}

# Make the server binary root:$MM_GROUP {{layout.server_binary_mode}} with dpkg-statoverride (dpkg then
# applies it on every unpack), so only root and the service account can run it: it can
# bind ports below 1024. Returns 1 when the admin has an override of their own (any other
# owner or mode): it stays as it is.
mm_binary_permissions() (
    current=$(dpkg-statoverride --list "$MM_BINARY" 2>/dev/null || true)
    if [ -z "$current" ]; then
        dpkg-statoverride --update --add root "$MM_GROUP" {{layout.server_binary_mode}} "$MM_BINARY"
    elif ! mm_is_package_override "$current"; then
        exit 1
    fi
)

# On purge: drop the package's override (never an admin's, never while the other edition
# uses the binary).
mm_remove_binary_override() {
    mm_other_edition_installed && return 0
    if mm_is_package_override "$(dpkg-statoverride --list "$MM_BINARY" 2>/dev/null || true)"; then
        dpkg-statoverride --remove "$MM_BINARY" >/dev/null 2>&1 || true
    fi
}

# The environment file may hold the database password: root's, readable by the group of the
# service account only ({{layout.env_file_mode}}). dpkg unpacks it as root:root
# {{layout.env_file_mode}} (it cannot know the group's id); any other owner, group or mode is
# the admin's choice (or a dpkg-statoverride) and stays. /etc/mattermost is root's: nothing
# here is in a directory the account can write.
mm_own_env_file() (
    [ -f "$MM_ENV_FILE" ] && [ ! -L "$MM_ENV_FILE" ] || exit 0
    [ "$(stat -c '%u:%g' "$MM_ENV_FILE")" = 0:0 ] || exit 0
    [ "$((0$(stat -c %a "$MM_ENV_FILE")))" -eq "$((0{{layout.env_file_mode}}))" ] || exit 0
    dpkg-statoverride --list "$MM_ENV_FILE" >/dev/null 2>&1 && exit 0
    chgrp "$MM_GROUP" "$MM_ENV_FILE"
)
{{else}}
# The package itself installs the server binary root:$MM_GROUP {{layout.server_binary_mode}} (%attr).
mm_binary_permissions() {
    return 0
}

# The package itself installs the environment file root:$MM_GROUP {{layout.env_file_mode}} (%attr).
mm_own_env_file() {
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
    mm_own_env_file
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

# After configure: restart a running service. A stopped one is never started by the
# package: on a fresh install without an existing config say what to do next, otherwise
# (an upgrade of a stopped service, an install after a removal, which stopped it) say that
# it is not running.
mm_after_configure() {
    if mm_systemd_running && systemctl is-active --quiet "$MM_UNIT"; then
        mm_restart_if_running
    elif [ "$1" = fresh ] && [ -z "${MM_HAD_CONFIG:-}" ]; then
        mm_next_steps
    elif mm_systemd_running; then
        mm_say "$MM_UNIT is not running, and the package does not start it: systemctl start $MM_UNIT"
    fi
}

# Whether the unit is enabled, as the next steps put it: Debian enables it on install (as
# deb-systemd-helper records it, with or without systemctl), RPM follows the presets
# (Fedora's and EL's disable what they do not name).
mm_enabled_text() {
{{#if deb}}
    if deb-systemd-helper --quiet is-enabled "$MM_UNIT" 2>/dev/null; then
{{else}}
    if systemctl is-enabled --quiet "$MM_UNIT" 2>/dev/null; then
{{/if}}
        echo "enabled but not started"
    else
        echo "not enabled and not started"
    fi
}

mm_next_steps() {
    cat <<NEXT
{{package}}: Mattermost {{version}} is installed; the service is $(mm_enabled_text),
because it needs a database first. Next steps:
  1. Create a PostgreSQL database and user for Mattermost.
  2. Put the database connection in $MM_ENV_FILE (MM_SQLSETTINGS_DATASOURCE=postgres://...),
     where no reset of config.json can lose it, or in config.json (SqlSettings.DataSource).
     Set ServiceSettings.SiteURL in $MM_DATA/config/config.json (or the file).
  3. Start it:   systemctl enable --now $MM_UNIT
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
    rmdir "$MM_PREFIX/client" "$MM_PREFIX" 2>/dev/null || true
    mm_say "$MM_DATA (config, data, logs, plugins) remains; delete it yourself if you no longer need it"
}
# --- end of shared functions ---
