# --- Part of the shared functions of {{package}}: moving an existing installation into the
# packaged layout, and back when the unpack fails. Included by functions.sh. ---
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
#      ($1 = takeover): like a; its program files (which that package gives to the account)
#      are moved aside untouched, and dpkg, finding none, unpacks this package's.
# Everything is checked first; if anything cannot be moved safely, nothing is changed and the
# script fails, so the package manager stops before unpacking (the function runs in a
# subshell: its `exit 1` is its status, which stops the calling script under `set -e`).
# Trees are compared with `diff --no-dereference`: root never reads through a symlink the
# account may have planted. Moves are renames (`mv -T`) and links are made with `ln -sT`:
# neither follows a symlink at the destination. Each step is recorded for mm_undo_migration.
mm_migrate_hand_made() (
    mode=${1:-hand-made}
    mm_is_packaged && return 0                  # already an installation of this packaging
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
            elif diff -r -q --no-dereference "$src" "$dst" >/dev/null 2>&1; then
                continue                          # the same files are already in place
            else
                problems="$problems
  $src and $dst both hold files, and they differ:
$(diff -r -q --no-dereference "$src" "$dst" 2>/dev/null | head -n 3 | sed 's/^/    /')"
            fi
        fi
    done
    # Root renames directories out of $old_root: a path only root may change on the way
    # there, or an account owning a directory above could swap it for a symlink between
    # these checks and the move, and have a directory of the system moved into its own.
    up=$(dirname "$old_root")
    while [ "$up" != / ]; do
        if [ "$(stat -c %u "$up")" != 0 ] || [ $((0$(stat -c %a "$up") & 022)) -ne 0 ]; then
            problems="$problems
  $old_root lies below $up, which someone other than root can change; move the installation
  below directories only root can write (or point $MM_PREFIX there) first"
            break
        fi
        up=$(dirname "$up")
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
        # Only program files are left, but the other package gave them to the account, which
        # may have planted hard links to root's files or swap directories for symlinks under
        # a walking chown: root does not touch that tree, it moves it out of the way whole
        # (a rename in root's own parent directory) and dpkg unpacks fresh root-owned files.
        mv -T "$MM_PREFIX" "$MM_PREFIX.mattermost-deb-$stamp"
        mm_record_undo aside "$MM_PREFIX" "$MM_PREFIX.mattermost-deb-$stamp"
        notes="$notes
  moved the old package's program files (the account's, as that package left them) to
  $MM_PREFIX.mattermost-deb-$stamp; this package unpacks its own; delete it once the package runs"
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
)

# After a successful configure: the migration is final.
mm_forget_migration() {
    rm -f "$MM_UNDO"
    rmdir "$MM_STATE_DIR" 2>/dev/null || true
}

# postrm abort-install / abort-upgrade: the unpack after a migration failed. Put every moved
# directory back, newest step first; whatever cannot go back safely (its old place is taken
# again) stays where the migration put it, and the message says where.
mm_undo_migration() (
    [ -f "$MM_UNDO" ] || exit 0
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
)

