#!/usr/bin/env bash
# Regenerates the real-file seeds in tests/fuzz/corpus from a throwaway PostgreSQL 15 cluster
# and walvaultd (the integration tests' helpers; run as root after a build):
#   fuzz_wal_page      the first page of real PG15 segments (initdb's and a later one)
#   fuzz_backup_files  the .backup history file PostgreSQL archived, the backup_label of a
#                      pg_basebackup, and walvault's backup.json of `walvault backup`
#   fuzz_wal_records   the first 64 KiB of real PG15 segments (after a 2-byte empty carry)
#   fuzz_object        objects as walvaultd stored them (of at most 64 KiB: the fuzzers'
#                      -max_len): plain and encrypted (AES-256-GCM)
#   fuzz_encrypted_object  encrypted objects, each after its storage key and a newline,
#                      written with the fuzzing key of fuzz_encrypted_object.cpp (objects of
#                      one 1 MiB frame: a segment's object of two decodes 16 MiB per input,
#                      40 inputs/s; tests/unit covers frame sequences)
#   fuzz_tar           the start of a tar of a real data directory
# The hand-written seeds (protocol frames, cron expressions, timeline histories in PostgreSQL's
# format, walvault 0.1's fixture objects) are kept; files named real-* are replaced.
#   tests/fuzz/make-seeds.sh
# The hand-written tar seeds (escapes, links, long names) come from the Python in
# tests/fuzz/make-tar-seeds.py.
set -Eeuo pipefail
# shellcheck source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
wv_setup
out=$WV_REPO_ROOT/tests/fuzz/corpus
rm -f "$out"/*/real-*

# The fuzzing key (public; fuzz_encrypted_object.cpp has the same 32 bytes).
printf '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n' >"$T/key"
chmod 600 "$T/key"
PG="$T/pg"
pg_init "$PG"
daemon_start --allow-uid postgres,root --encryption-key-file "$T/key" \
  --pg-conninfo "host=$T/pgsock port=${WV_PG_PORT[$PG]} user=postgres" --backup-chunk-size 1MiB
pg_start "$PG"
head -c 8192 "$PG/pg_wal/000000010000000000000001" >"$out/fuzz_wal_page/real-initdb-first-page"
{ printf '\0\0'; head -c 65534 "$PG/pg_wal/000000010000000000000001"; } >"$out/fuzz_wal_records/real-initdb-start"

psql_q "$PG" "create table t as select g as id, md5(g::text) as payload from generate_series(1, 20000) g" >/dev/null
seg=$(pg_switch "$PG")
wait_archived "$PG" "$seg"
head -c 8192 "$PG/pg_wal/$seg" >"$out/fuzz_wal_page/real-after-load-first-page"
{ printf '\0\0'; head -c 65534 "$PG/pg_wal/$seg"; } >"$out/fuzz_wal_records/real-after-load-start"
psql_q "$PG" "begin; insert into t values (0, 'x'); commit; begin; insert into t values (-1, 'y'); rollback" >/dev/null
seg=$(pg_switch "$PG")
wait_archived "$PG" "$seg"
{ printf '\0\0'; head -c 65534 "$PG/pg_wal/$seg"; } >"$out/fuzz_wal_records/real-commit-abort"
tar -C "$PG" -cf - PG_VERSION global/pg_control pg_xact | head -c 65536 >"$out/fuzz_tar/real-datadir-start"

wv_cli -u root --json backup --label seed
assert_rc 0 "walvault backup"
id=$(jq_out '.id')
sqlite3 "$REPO/index.db" "select document from stored_backups where id = '$id'" >"$out/fuzz_backup_files/real-backup.json" ||
  fail "backup.json of $id not found in $REPO/index.db"
backup_file=$(find "$PG/pg_wal" -maxdepth 1 -name '*.backup' | sort | tail -n 1)
[ -n "$backup_file" ] || fail "PostgreSQL left no .backup file in pg_wal"
cp "$backup_file" "$out/fuzz_backup_files/real-history.backup"
cp "$backup_file" "$T/work/"   # a later checkpoint removes it from pg_wal
backup_file=$T/work/$(basename "$backup_file")
chown postgres: "$backup_file"
pg_basebackup_to "$PG" "$T/bb"
cp "$T/bb/backup_label" "$out/fuzz_backup_files/real-backup_label"

n=0
while IFS= read -r -d '' object; do
  n=$((n + 1))
  cp "$object" "$out/fuzz_object/real-encrypted-$n"
  { printf '%s\n' "${object#"$REPO"/}"; cat "$object"; } >"$out/fuzz_encrypted_object/real-$n"
done < <(find "$REPO" -type f -size -64k \( -name '*.backup*' -o -name '*.history*' -o -name 'backup.json*' \) -print0)
[ "$n" -gt 0 ] || fail "no small object found in $REPO"
# A plain (unencrypted) repository for the same kinds of objects.
daemon_stop
daemon_start --repo "$T/plain-repo" --socket "$T/run/plain.sock" --allow-uid postgres,root
wv_run -u postgres -- "$T/bin/archive-push" --socket "$T/run/plain.sock" "$backup_file"
assert_rc 0 "archive-push of the .backup file to the plain repository"
while IFS= read -r -d '' object; do
  n=$((n + 1))
  cp "$object" "$out/fuzz_object/real-plain-$n"
done < <(find "$T/plain-repo" -type f -size -64k -name '*.backup*' -print0)
ok "seeds written under $out ($(find "$out" -name 'real-*' | wc -l) real files)"
finish
