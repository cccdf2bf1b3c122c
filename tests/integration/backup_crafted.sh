#!/usr/bin/env bash
# A base backup whose tar stream holds unsafe entries is refused by `walvault restore`, and
# nothing is written outside the data directory (restorer/extract.cpp).
#
# The crafted backups go through the real daemon: walvaultd runs with --pg-bindir pointing at a
# pg_basebackup wrapper that runs the real pg_basebackup and rewrites its tar stream (python
# tarfile, streaming) with crafted members inserted right after the first member, so they land
# in chunk 1. The kind comes from $T/craft_mode, written before each `walvault backup`:
#   dotdot        a regular file "../escaped_dotdot"
#   absolute      a regular file "$T/outside/escaped_abs"
#   symlink       a symlink "evil" -> "$T/outside", then a regular file "evil/escaped_link"
#   symlink_rel   a symlink "base/evil2" -> "../../outside" (resolves to $T/outside), then a
#                 regular file "base/evil2/escaped_rel"
#   through_link  a symlink "lnk" -> "global" (inside), then a regular file "lnk/escaped_through"
#                 (writing through a symlink)
#   hardlink      a hard link "evil_hl" -> "../victim" ($T/victim), then a regular file
#                 "evil_hl" with new content (writing through the link)
#   fifo          a fifo "evil_fifo"
#   none          nothing crafted (control)
# walvaultd stores whatever PostgreSQL's stream holds (each `walvault backup` succeeds). Each
# restore as root into $T/r_<mode> must exit 1 naming the unsafe entry, leave no
# recovery.signal, and change nothing outside that directory: $T/outside stays empty,
# $T/victim keeps its content, and a listing of $T (without the directory, the logs and the
# repository) is identical before and after. The control restores, starts and has the rows.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

PYTHON=$(command -v python3) || { echo "SKIP: $WV_TEST_NAME: python3 not found"; WV_SUMMARY_DONE=1; exit 0; }
MODES=(dotdot absolute symlink symlink_rel through_link hardlink fifo none)

# --- the pg_basebackup wrapper ---------------------------------------------------------------
FAKEBIN="$T/fakebin"
mkdir -p "$FAKEBIN" "$T/outside"
chmod 755 "$FAKEBIN" "$T/outside"
echo "original content of the victim" >"$T/victim"
victim_sum=$(sha256sum <"$T/victim")
echo none >"$T/craft_mode"

cat >"$FAKEBIN/craft.py" <<'EOF'
# Copies a tar stream from stdin to stdout (and to a copy file), inserting crafted members
# right after the first member. argv: MODE-FILE OUTSIDE-DIR COPY-FILE
import io
import sys
import tarfile
import time

mode_file, outside, copy_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(mode_file) as f:
    mode = f.read().strip()


class Tee:
    def __init__(self, out, copy):
        self.out, self.copy = out, copy

    def write(self, data):
        self.out.write(data)
        self.copy.write(data)
        return len(data)

    def flush(self):
        self.out.flush()
        self.copy.flush()


copy = open(copy_path, "wb")
src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
dst = tarfile.open(fileobj=Tee(sys.stdout.buffer, copy), mode="w|", format=tarfile.PAX_FORMAT)
now = int(time.time())


def member(name, kind, linkname="", data=None, mode_bits=0o600):
    info = tarfile.TarInfo("placeholder")
    info.name = name  # exactly as given: tarfile must not normalise it
    info.type = kind
    info.linkname = linkname
    info.mode = mode_bits
    info.mtime = now
    info.size = len(data) if data is not None else 0
    dst.addfile(info, io.BytesIO(data) if data is not None else None)


def craft():
    if mode == "dotdot":
        member("../escaped_dotdot", tarfile.REGTYPE, data=b"escaped via ..\n")
    elif mode == "absolute":
        member(outside + "/escaped_abs", tarfile.REGTYPE, data=b"escaped via an absolute name\n")
    elif mode == "symlink":
        member("evil", tarfile.SYMTYPE, linkname=outside, mode_bits=0o777)
        member("evil/escaped_link", tarfile.REGTYPE, data=b"escaped through a symlink\n")
    elif mode == "symlink_rel":
        member("base/evil2", tarfile.SYMTYPE, linkname="../../outside", mode_bits=0o777)
        member("base/evil2/escaped_rel", tarfile.REGTYPE, data=b"escaped through a relative symlink\n")
    elif mode == "through_link":
        member("lnk", tarfile.SYMTYPE, linkname="global", mode_bits=0o777)
        member("lnk/escaped_through", tarfile.REGTYPE, data=b"written through a symlink\n")
    elif mode == "hardlink":
        member("evil_hl", tarfile.LNKTYPE, linkname="../victim")
        member("evil_hl", tarfile.REGTYPE, data=b"overwritten through a hard link\n")
    elif mode == "fifo":
        member("evil_fifo", tarfile.FIFOTYPE)
    elif mode != "none":
        raise SystemExit("craft.py: unknown mode " + mode)


first = True
for m in src:
    dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    if first:
        first = False
        craft()
dst.close()
sys.stdout.buffer.flush()
copy.close()
EOF
cat >"$FAKEBIN/pg_basebackup" <<EOF
#!/bin/bash
# Test wrapper (backup_crafted.sh): the real pg_basebackup, its tar stream rewritten by craft.py.
set -o pipefail
"$PGBIN/pg_basebackup" "\$@" | "$PYTHON" "$FAKEBIN/craft.py" "$T/craft_mode" "$T/outside" "$T/craft_copy.tar"
EOF
chmod 755 "$FAKEBIN/pg_basebackup" "$FAKEBIN/craft.py"

# --- cluster and daemon ----------------------------------------------------------------------
PG="$T/pg"
pg_init "$PG"
daemon_start --allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=${WV_PG_PORT[$PG]} user=postgres" \
  --backup-chunk-size 1MiB --pg-bindir "$FAKEBIN" --prune-interval 0
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, payload text); insert into t select g, md5(g::text) from generate_series(1, 20000) g" >/dev/null

# The crafted members each mode must put into the stream, as `tar -tvP` lists them.
declare -A EXPECT_TAR=(
  [dotdot]=' \.\./escaped_dotdot$'
  [absolute]=" $T/outside/escaped_abs\$"
  [symlink]=" evil -> $T/outside\$"
  [symlink_rel]=' base/evil2 -> \.\./\.\./outside$'
  [through_link]=' lnk -> global$'
  [hardlink]=' evil_hl link to \.\./victim$'
  [fifo]='^p.* evil_fifo$'
)
# The entry the restore must name, and the reason it gives.
declare -A EXPECT_ENTRY=(
  [dotdot]='../escaped_dotdot'
  [absolute]="$T/outside/escaped_abs"
  [symlink]='evil'
  [symlink_rel]='base/evil2'
  [through_link]='lnk/escaped_through'
  [hardlink]='evil_hl'
  [fifo]='evil_fifo'
)
declare -A EXPECT_REASON=(
  [dotdot]='leaves the data directory|\.\.'
  [absolute]='absolute'
  [symlink]='absolute'
  [symlink_rel]='leaves the data directory'
  [through_link]='symlink'
  [hardlink]='hard link target'
  [fifo]='fifo'
)
declare -A BACKUP_ID=()

# --- backups through walvaultd -----------------------------------------------------------------
for mode in "${MODES[@]}"; do
  echo "$mode" >"$T/craft_mode"
  rm -f "$T/craft_copy.tar"
  wv_cli_json backup --label "crafted $mode"
  check_rc 0 "$mode: walvault backup succeeds (walvaultd stores the stream as PostgreSQL's tar holds it)"
  check_eq "$(jq_out .complete)" true "$mode: the backup is complete"
  BACKUP_ID[$mode]=$(jq_out .id)
  [ -f "$T/craft_copy.tar" ] || fail "$mode: the wrapper did not run (no $T/craft_copy.tar)"
  listing=$(tar -tvPf "$T/craft_copy.tar" 2>&1) || fail "$mode: tar cannot list the stream the wrapper emitted: $(_wv_oneline "$listing")"
  rm -f "$T/craft_copy.tar"
  if [ "$mode" = none ]; then
    check_eq "$(printf '%s\n' "$listing" | grep -cE 'escaped|evil|lnk ->' || true)" 0 "none: the control stream has no crafted member"
  else
    # Crafted members come right after the first member: lines 2.. of the listing.
    if grep -Eq -- "${EXPECT_TAR[$mode]}" <<<"$(sed -n '2,3p' <<<"$listing")"; then
      ok "$mode: the stream holds the crafted member right after the first one ($(printf '%s\n' "$listing" | sed -n 2p | awk '{ $1 = $2 = $3 = $4 = $5 = ""; print }' | sed 's/^ *//'))"
    else
      fail "$mode: crafted member /${EXPECT_TAR[$mode]}/ not at the start of the emitted tar: $(_wv_oneline "$(printf '%s\n' "$listing" | head -n 4)")"
    fi
  fi
done
wv_cli_json list --backups
check_eq "$(jq_out '[.backups[] | select(.stored != null)] | length')" "${#MODES[@]}" "list --backups shows all ${#MODES[@]} backups as stored"
want=$(psql_q "$PG" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
pg_stop "$PG"

# --- restores ----------------------------------------------------------------------------------
# Everything below $T except the restore directory DIR, the logs and the repository: type, path,
# and for anything but a directory its size, mtime and link target (directories' mtimes change
# as the harness creates and removes its temporary files).
outside_listing() { # DIR
  find "$T" \( -path "$1" -o -path "$T/logs" -o -path "$REPO" \) -prune -o \
    \( -type d -printf 'd %p\n' \) -o \( -printf '%y %p %s %T@ %l\n' \) | sort
}

for mode in "${MODES[@]}"; do
  DIR="$T/r_$mode"
  id=${BACKUP_ID[$mode]}
  before=$(outside_listing "$DIR")
  wv_cli -u root restore --pgdata "$DIR" --backup "$id"
  after=$(outside_listing "$DIR")
  if [ "$mode" = none ]; then
    assert_rc 0 "none: restore of the control backup $id"
  else
    check_rc 1 "$mode: restore of backup $id is refused"
    check_contains "refusing unsafe entry '${EXPECT_ENTRY[$mode]}'" "$RUN_ERR" "$mode: the refusal names the unsafe entry '${EXPECT_ENTRY[$mode]}'"
    check_match "${EXPECT_REASON[$mode]}" "$(printf '%s\n' "$RUN_ERR" | grep -F "refusing unsafe entry" || true)" "$mode: the refusal says why (/${EXPECT_REASON[$mode]}/)"
    check_contains "chunk 1:" "$RUN_ERR" "$mode: the unsafe entry is found in chunk 1"
    if [ ! -e "$DIR/recovery.signal" ] && [ ! -e "$DIR/standby.signal" ]; then ok "$mode: no recovery.signal or standby.signal in $DIR"; else soft_fail "$mode: a signal file was written into $DIR"; fi
    log "$mode: $(printf '%s\n' "$RUN_ERR" | head -n 2 | tr '\n' ' ' | cut -c1-300)"
  fi
  check_eq "$(find "$T/outside" -mindepth 1 -printf '%p ' 2>/dev/null)" "" "$mode: $T/outside is still empty"
  if [ ! -e "$T/escaped_dotdot" ] && [ ! -L "$T/escaped_dotdot" ]; then ok "$mode: no $T/escaped_dotdot"; else soft_fail "$mode: $T/escaped_dotdot exists"; fi
  check_eq "$(sha256sum <"$T/victim")" "$victim_sum" "$mode: $T/victim is unchanged"
  check_eq "$(stat -c %h "$T/victim")" 1 "$mode: nothing was hard-linked to $T/victim"
  if [ "$before" == "$after" ]; then
    ok "$mode: nothing outside $DIR was created or changed (listing of $T identical)"
  else
    soft_fail "$mode: outside $DIR: removed/changed [$(comm -23 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | tr '\n' ' ' | cut -c1-400)] new/changed [$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | tr '\n' ' ' | cut -c1-400)]"
  fi
done

# The control restore starts and holds the rows.
R="$T/r_none"
if [ -e "$R/recovery.signal" ]; then ok "none: recovery.signal written"; else soft_fail "none: no recovery.signal in $R"; fi
pg_adopt "$R" "archive_mode = off"
pg_start "$R"
wait_recovery_done "$R" 60
check_eq "$(psql_q "$R" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")" "$want" "none: the restored control cluster has every row"
pg_stop "$R"
daemon_stop
finish
