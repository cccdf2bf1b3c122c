#!/usr/bin/env bash
# Load and abuse (issue 14): walvaultd stays correct, responsive and bounded while clients
# misbehave, and PostgreSQL's own archive_command keeps succeeding throughout.
#   1. framing: a request delivered one byte at a time within request-timeout is served (a PUSH
#      whose descriptor rides on the first byte); one slower than request-timeout is cut off at
#      the deadline (request-timeout bounds accept-to-complete-frame, not the gap between bytes);
#      frames of length 0, 4097, 0xFFFFFFFF and 4096 (the last two with 16 MiB of junk behind
#      them) are refused with ERR invalid and closed, a PING followed by 2000 more frames and
#      16 MiB of junk gets one answer and is closed, and 200 more oversized frames do not grow
#      the daemon's memory.
#   2. descriptors: FIFOs, directories, sockets, /dev/zero, write-only descriptors, no or three
#      descriptors, handed to the daemon directly (a raw client's SCM_RIGHTS, since
#      archive-push itself refuses what is not a regular file before asking), and through
#      archive-push: a directory, a socket, /dev/zero, a write-only file, sparse 20 GB files
#      (segment, .partial, .history names; one with a real first page; and 1 GiB). Each gets
#      one clear error naming the file and cause (a raw write-only descriptor is found out
#      only when read: ERR io), nothing is stored under the name, memory does not grow, and
#      the daemon then stores the real file. (A FIFO through archive-push is bad_inputs.sh's.)
#   3. files truncated while walvaultd reads them: 12 raw pushes and 8 archive-push runs of
#      fresh copies of real segments (dropped from the page cache so the daemon's read goes to
#      disk), each truncated at a different delay after the request is sent. Every answer is
#      OK or a clear error (archive-push: exit 1, one stderr line naming the file) with
#      nothing stored, and no torn object is stored: PostgreSQL later archives the real
#      content under the same names without a conflict, and archive-get returns it byte for
#      byte. (Which attempts are cut before, during or after the read depends on timing; the
#      log says how many fell where.)
#   4. load: 200 connections that connect and never send (they fill max-connections: 64), then
#      64 archive-push clients of 64 distinct real segments plus 64 more of one same segment,
#      while PostgreSQL's archive_command drains its backlog and new segments. Every push exits
#      0 (BUSY is retried until request-timeout frees the idle slots), pg_stat_archiver has no
#      failure, every segment is listed, samples restore byte for byte, and walvaultd's
#      descriptor count is back to where it was while the idle clients still hold their ends.
#   5. 10,000 cheap requests (PING, GET of missing names, STATUS with a pipe, and refusals that
#      carry descriptors: bad names, a non-regular file, three descriptors, unknown verbs) from
#      4 parallel clients: every answer as expected, and the daemon's descriptors and threads
#      are the same before and after.
#   6. walvaultd's peak RSS (VmHWM) stays under a bound; it exits 0 on SIGTERM (under ASan: no
#      leak report).
# The segments are real PostgreSQL 15 WAL of the test's own cluster: 90 segments made by
# pg_switch_wal() in a loop while archive_command is still empty (wal_init_zero = off keeps
# them sparse on disk), so the pushes here are the first of those names.
# shellcheck disable=SC2119,SC2034,SC2317  # helpers with optional arguments called without any; lib.sh's globals; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
command -v python3 >/dev/null || { echo "$WV_TEST_NAME: python3 is needed" >&2; exit 2; }
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }

REQUEST_TIMEOUT=5
FLOOD_REQUESTS=${FLOOD_REQUESTS:-10000}
# Bound on walvaultd's peak RSS (VmHWM), by build: the ASan+UBSan build (it links libasan)
# starts at about 165 MiB (shadow memory) and keeps up to 256 MiB of freed blocks in its
# quarantine. Measured here (2 workers, 2 cores): release 112 MiB, ASan 550 MiB, the peak
# during the load. It depends on the workers, not on the clients: each busy worker holds one
# 16 MiB segment and its compressed copy, and a duplicate push also decodes the stored copy
# to prove it (release: 58 MiB after 128 pushes of new segments, at 1, 8 or 128 at once;
# 97 MiB after 64 concurrent duplicates). The bounds leave about 2x and still catch a buffer
# per connection (64 x 16 MiB = 1 GiB) or a sparse 20 GB file being read into memory.
# (A here-string, not a pipe: under pipefail grep -q's early exit would fail ldd with SIGPIPE.)
if grep -q libasan <<<"$(ldd "$T/bin/walvaultd" 2>/dev/null || true)"; then
  SANITIZED=1 RSS_BOUND_MIB=1024
else
  SANITIZED=0 RSS_BOUND_MIB=256
fi

PY="$T/abuse.py"
cat >"$PY" <<'PY'
# Raw protocol clients for load_abuse.sh (docs/protocol.md: 4-byte big-endian length, payload).
import array, json, os, shutil, socket, struct, sys, time

def frame(payload):
    return struct.pack(">I", len(payload)) + payload

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data

def read_frame(s):
    head = recv_exact(s, 4)
    if head is None:
        return None
    payload = recv_exact(s, struct.unpack(">I", head)[0])
    return None if payload is None else payload.decode(errors="replace")

def send_fds(s, data, fds):
    if fds:
        s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
    else:
        s.sendall(data)

def connect(path, timeout=30):
    # With a timeout Python connects without blocking, and a Unix socket whose listen backlog
    # is full then says EAGAIN at once (archive-push retries it the same way).
    deadline = time.time() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.01)

def request(path, payload, fds=(), timeout=30):
    """One request; retries BUSY (bounded). Returns the response payload, or a marker."""
    deadline = time.time() + timeout
    while True:
        s = connect(path, timeout)
        try:
            greeting = read_frame(s)
            busy = greeting is not None and greeting.startswith("BUSY")
            if not busy:
                if greeting != "WALVAULT 1":
                    return "GREETING " + str(greeting)
                send_fds(s, frame(payload), fds)
                response = read_frame(s)
                if response is None:
                    return "CLOSED"
                busy = response.startswith("BUSY")
                if not busy:
                    return response
        finally:
            s.close()
        if time.time() > deadline:
            return "STILL BUSY"
        time.sleep(0.05)

def status_of(response):
    return response.split("\n", 1)[0]

def message_of(response):
    for line in response.split("\n")[1:]:
        if line.startswith("message="):
            return line[len("message="):]
    return ""

def out(doc):
    print(json.dumps(doc), flush=True)

# idle SOCK N READY SUMMARY: N connections that never send a byte. Writes READY once all are
# connected, SUMMARY (JSON) once the daemon has closed every one (or after 60 s), then holds
# its own ends open until killed.
def cmd_idle(sock, n, ready, summary):
    n = int(n)
    t0 = time.time()
    conns = [connect(sock, 30) for _ in range(n)]
    open(ready, "w").close()
    for s in conns:
        s.setblocking(False)
    import selectors
    sel = selectors.DefaultSelector()
    for i, s in enumerate(conns):
        sel.register(s, selectors.EVENT_READ, i)
    buf = {i: b"" for i in range(n)}
    greeted = busy = 0
    closed_at = {}
    deadline = time.time() + 60
    while len(closed_at) < n and time.time() < deadline:
        for key, _ in sel.select(timeout=0.5):
            i = key.data
            try:
                chunk = conns[i].recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                buf[i] += chunk
                continue
            closed_at[i] = time.time() - t0
            sel.unregister(conns[i])  # our end stays open: only the daemon closed its own
    for i in range(n):
        b = buf[i]
        if b[4:14] == b"WALVAULT 1":
            greeted += 1
        elif b[4:8] == b"BUSY":
            busy += 1
    greeted_close = [closed_at[i] for i in range(n) if i in closed_at and buf[i][4:14] == b"WALVAULT 1"]
    doc = {"connections": n, "greeted": greeted, "busy": busy, "closed_by_daemon": len(closed_at),
           "greeted_closed_after_min": round(min(greeted_close), 2) if greeted_close else None,
           "greeted_closed_after_max": round(max(greeted_close), 2) if greeted_close else None}
    with open(summary + ".tmp", "w") as f:
        json.dump(doc, f)
    os.rename(summary + ".tmp", summary)
    time.sleep(600)

# trickle SOCK DELAY VERB-LINE [FILE]: sends one request frame a byte at a time, DELAY seconds
# apart, FILE's descriptor (opened read-only) on the first byte.
def cmd_trickle(sock, delay, line, path=None):
    delay = float(delay)
    s = connect(sock, 60)
    greeting = read_frame(s)
    fds = []
    if path:
        fds = [os.open(path, os.O_RDONLY)]
    data = frame(line.encode())
    t0 = time.time()
    sent = 0
    result = None
    try:
        for i in range(len(data)):
            if i:
                time.sleep(delay)
            send_fds(s, data[i:i + 1], fds if i == 0 else [])
            sent += 1
        response = read_frame(s)
        result = "CLOSED" if response is None else response
    except (BrokenPipeError, ConnectionResetError):
        result = "CLOSED"
    if result == "CLOSED":
        # The daemon's close can be seen a byte late: read what is left, if anything.
        try:
            s.settimeout(1)
            rest = s.recv(4096)
            if rest:
                result = "CLOSED after " + repr(rest[:80])
        except OSError:
            pass
    out({"greeting": greeting, "frame_bytes": len(data), "sent": sent, "result": result,
         "elapsed": round(time.time() - t0, 2)})

# oversize SOCK REPEAT: frames the protocol forbids. Prints one JSON line per case.
def cmd_oversize(sock, repeat):
    junk = b"\xff" * (1 << 20)
    def attempt(head, junk_mib):
        s = connect(sock, 30)
        greeting = read_frame(s)
        pushed = 0
        try:
            s.sendall(head)
            for _ in range(junk_mib):
                s.sendall(junk)
                pushed += len(junk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        response = None
        try:
            response = read_frame(s)
        except ConnectionResetError:
            response = None
        except socket.timeout:
            response = "TIMEOUT"
        closed = False
        try:
            s.settimeout(5)
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        s.close()
        return {"greeting": greeting, "response": response, "junk_accepted": pushed, "closed": closed}
    # (case, bytes first, MiB of junk after them, the answer expected)
    cases = [("length 0", struct.pack(">I", 0), 0, "ERR invalid"),
             ("length 4097", struct.pack(">I", 4097) + b"x" * 4097, 0, "ERR invalid"),
             ("length 0xFFFFFFFF + 16 MiB junk", struct.pack(">I", 0xFFFFFFFF), 16, "ERR invalid"),
             ("length 4096 of junk + 16 MiB more", struct.pack(">I", 4096), 16, "ERR invalid"),
             ("a PING frame, then 2000 more and 16 MiB junk", frame(b"PING") * 2001, 16, "OK")]
    for what, head, mib, want in cases:
        doc = attempt(head, mib)
        doc["case"] = what
        doc["want"] = want
        out(doc)
    t0 = time.time()
    refused = 0
    for i in range(int(repeat)):
        r = attempt(struct.pack(">I", 0x7FFFFFFF + i), 1)
        if r["response"] and r["response"].startswith("ERR invalid") and r["closed"]:
            refused += 1
    out({"case": "repeat", "attempts": int(repeat), "refused_and_closed": refused, "secs": round(time.time() - t0, 2)})

# badfd SOCK NAME KIND [PATH]: PUSH NAME with a descriptor of KIND.
def cmd_badfd(sock, name, kind, path=None):
    keep = []
    if kind == "fifo":
        fds = [os.open(path, os.O_RDONLY | os.O_NONBLOCK)]
    elif kind == "fifo-with-writer":
        r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.write(w, b"\xd1\x10" * 100)  # a writer that holds it open and has written a little
        keep.append(w)
        fds = [r]
    elif kind == "directory":
        fds = [os.open(path, os.O_RDONLY | os.O_DIRECTORY)]
    elif kind == "socketpair":
        a, b = socket.socketpair()
        keep += [a, b]
        fds = [a.fileno()]
    elif kind == "listening-socket":
        l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        l.bind(path)
        l.listen(1)
        keep.append(l)
        fds = [l.fileno()]
    elif kind == "devzero":
        fds = [os.open("/dev/zero", os.O_RDONLY)]
    elif kind == "write-only":
        fds = [os.open(path, os.O_WRONLY)]
    elif kind == "none":
        fds = []
    elif kind == "three":
        fds = [os.open(path, os.O_RDONLY) for _ in range(3)]
    else:
        raise SystemExit("unknown kind " + kind)
    t0 = time.time()
    response = request(sock, ("PUSH " + name).encode(), fds, timeout=30)
    out({"kind": kind, "status": status_of(response), "message": message_of(response),
         "secs": round(time.time() - t0, 2)})

# truncrace SOCK SRCDIR DSTDIR DELAYS-MS NAME...: for each NAME, a fresh copy of SRCDIR/NAME
# (fsync'd, then dropped from the page cache), pushed; after DELAY ms it is truncated to 8 KiB.
def cmd_truncrace(sock, srcdir, dstdir, delays, *names):
    delays = [float(d) / 1000 for d in delays.split(",")]
    for name, delay in zip(names, delays):
        dst = os.path.join(dstdir, name)
        shutil.copyfile(os.path.join(srcdir, name), dst)
        fd = os.open(dst, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        s = connect(sock, 60)
        greeting = read_frame(s)
        t0 = time.time()
        send_fds(s, frame(("PUSH " + name).encode()), [fd])
        time.sleep(delay)
        os.truncate(dst, 8192)
        t_trunc = time.time() - t0
        response = read_frame(s)
        t_resp = time.time() - t0
        s.close()
        os.close(fd)
        response = response or "CLOSED"
        out({"name": name, "greeting": greeting, "delay_ms": round(delay * 1000, 1),
             "truncated_at_ms": round(t_trunc * 1000, 1), "answered_at_ms": round(t_resp * 1000, 1),
             "status": status_of(response), "message": message_of(response)})

# truncpush ARCHIVE-PUSH SOCK SRCDIR DSTDIR DELAYS-MS NAME...: the same through archive-push
# itself (started, then the file is truncated DELAY ms later): its exit status and stderr.
def cmd_truncpush(archive_push, sock, srcdir, dstdir, delays, *names):
    import subprocess
    delays = [float(d) / 1000 for d in delays.split(",")]
    for name, delay in zip(names, delays):
        dst = os.path.join(dstdir, name)
        shutil.copyfile(os.path.join(srcdir, name), dst)
        fd = os.open(dst, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        t0 = time.time()
        p = subprocess.Popen([archive_push, "--socket", sock, "--timeout", "60", dst],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        os.truncate(dst, 8192)
        t_trunc = time.time() - t0
        _, err = p.communicate(timeout=90)
        out({"name": name, "path": dst, "delay_ms": round(delay * 1000, 1), "truncated_at_ms": round(t_trunc * 1000, 1),
             "exit": p.returncode, "stderr": err.decode(errors="replace"), "secs": round(time.time() - t0, 2)})

# flood SOCK TOTAL PROCS EMPTY-FILE: TOTAL cheap requests from PROCS processes.
KINDS = ["ping", "get-segment", "get-history", "push-bad-name", "three-fds", "push-devnull",
         "unknown-verb", "ping", "get-segment", "ping"]
def expected(kind, response):
    st = status_of(response)
    if kind == "ping":
        return st == "OK"
    if kind.startswith("get-"):
        return st == "NOTFOUND"
    if kind == "status":
        return st == "OK"
    return st == "ERR invalid"

def flood_worker(sock, count, empty, offset):
    empty_fd = os.open(empty, os.O_WRONLY)
    devnull = os.open("/dev/null", os.O_RDONLY)
    counts, bad, busy_retries = {}, [], 0
    for i in range(count):
        kind = "status" if (i + offset) % 100 == 99 else KINDS[(i + offset) % len(KINDS)]
        fds, pipe_r = [], None
        if kind == "ping":
            payload = b"PING"
        elif kind == "get-segment":
            payload, fds = b"GET 0000007F00000000000000F1\nmode=recovery", [empty_fd]
        elif kind == "get-history":
            payload, fds = b"GET 7FFFFFFE.history\nmode=exact", [empty_fd]
        elif kind == "push-bad-name":
            payload, fds = b"PUSH ../../etc/passwd", [devnull]
        elif kind == "three-fds":
            payload, fds = b"PING", [devnull, devnull, devnull]
        elif kind == "push-devnull":
            payload, fds = b"PUSH 0000007F00000000000000F2", [devnull]
        elif kind == "unknown-verb":
            payload = b"HELLO there"
        else:  # status
            pipe_r, pipe_w = os.pipe()
            payload, fds = b"STATUS\nformat=json", [pipe_w]
        response = request(sock, payload, fds, timeout=60)
        if pipe_r is not None:
            os.close(pipe_w)
            doc = b""
            while True:
                chunk = os.read(pipe_r, 65536)
                if not chunk:
                    break
                doc += chunk
            os.close(pipe_r)
            if not doc.startswith(b"{"):
                response = "BAD DOCUMENT " + repr(doc[:60])
        counts[kind] = counts.get(kind, 0) + 1
        if not expected(kind, response) and len(bad) < 5:
            bad.append(kind + ": " + response.replace("\n", " | ")[:200])
        elif not expected(kind, response):
            bad.append("")
    return {"counts": counts, "unexpected": bad}

def cmd_flood(sock, total, procs, empty):
    total, procs = int(total), int(procs)
    t0 = time.time()
    children = []
    for p in range(procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                res = flood_worker(sock, total // procs, empty, p)
            except Exception as e:
                res = {"counts": {}, "unexpected": ["exception: " + repr(e)]}
            os.write(w, json.dumps(res).encode())
            os._exit(0)
        os.close(w)
        children.append((pid, r))
    counts, unexpected = {}, []
    for pid, r in children:
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.waitpid(pid, 0)
        res = json.loads(data or b'{"counts": {}, "unexpected": ["no result"]}')
        for k, v in res["counts"].items():
            counts[k] = counts.get(k, 0) + v
        unexpected += res["unexpected"]
    secs = time.time() - t0
    out({"requests": sum(counts.values()), "counts": counts, "unexpected": len(unexpected),
         "unexpected_examples": [u for u in unexpected if u][:5], "secs": round(secs, 2),
         "per_second": round(sum(counts.values()) / secs)})

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
PY
chmod 644 "$PY"

py() { runuser -u postgres -- timeout 120 python3 "$PY" "$@"; }  # as an allowed uid
# The python3 postgres finds (root's PATH may hold shims postgres cannot run).
PG_PYTHON=$(runuser -u postgres -- sh -c 'command -v python3') || fail "postgres finds no python3"

# Daemon vitals from /proc.
d_fds() { find "/proc/$D/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
d_threads() { find "/proc/$D/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
d_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$D/status"; }  # VmRSS, VmHWM
mib() { echo $((($1 + 1023) / 1024)); }
# settle SECONDS CMD...: polls CMD every 0.2 s for at most SECONDS; returns (never fails the
# test: the check after it says what was seen).
settle() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 0
    sleep 0.2
  done
}
fds_at_most() { [ "$(d_fds)" -le "$1" ]; }
threads_at_most() { [ "$(d_threads)" -le "$1" ]; }

# check_clear_push_error WHAT NAME CAUSE-REGEX: the last wv_push failed properly.
check_clear_push_error() {
  local what=$1 name=$2 cause=$3 lines
  log "$what -> exit $RUN_RC, stderr: $(_wv_oneline "$RUN_ERR")"
  check_rc 1 "$what: archive-push exits 1"
  check_contains "$name" "$RUN_ERR" "$what: stderr names the file"
  check_match "$cause" "$RUN_ERR" "$what: stderr gives the cause"
  lines=$(printf '%s\n' "$RUN_ERR" | grep -c . || true)
  check_eq "$lines" 1 "$what: one stderr line"
}

# check_raw_refusal JSON NAME CAUSE-REGEX [STATUS-REGEX]: a raw badfd client's answer (NAME -:
# the message need not name it).
check_raw_refusal() {
  local doc=$1 name=$2 cause=$3 want=${4:-^ERR invalid$} kind status msg secs
  kind=$(jq -r .kind <<<"$doc")
  status=$(jq -r .status <<<"$doc")
  msg=$(jq -r .message <<<"$doc")
  secs=$(jq -r .secs <<<"$doc")
  log "raw PUSH with $kind -> $status: $msg (${secs}s)"
  check_match "$want" "$status" "descriptor '$kind' handed to walvaultd directly: $status"
  if [ "$name" != - ]; then check_contains "$name" "$msg" "descriptor '$kind': the message names $name"; fi
  check_match "$cause" "$msg" "descriptor '$kind': the message gives the cause"
  check_eq "$(awk -v s="$secs" 'BEGIN { print (s < 5) }')" 1 "descriptor '$kind': answered at once (${secs}s), no read of a stream"
}

not_stored() { # NAME WHAT
  rm -f "$T/work/ns"
  wv_get "$1" "$T/work/ns"
  check_rc 1 "$2: nothing stored under $1"
  rm -f "$T/work/ns"
}

# =============================================================================================
# Two workers whatever the machine, so the memory bound below does not depend on nproc.
daemon_start --request-timeout "$REQUEST_TIMEOUT" --workers 2
D=$WV_DAEMON_PID
log "walvaultd pid $D ($([ "$SANITIZED" = 1 ] && echo "ASan+UBSan build" || echo "release build")); memory bound ${RSS_BOUND_MIB} MiB"
log "at start: $(d_fds) descriptors, $(d_threads) threads, VmRSS $(mib "$(d_kib VmRSS)") MiB"

A="$T/a"
pg_init "$A" "wal_init_zero = off" "archive_command = ''"
pg_start "$A"
psql_q "$A" "do \$\$ begin for i in 1..90 loop perform pg_logical_emit_message(false, 'walvault', 'segment ' || i); perform pg_switch_wal(); end loop; end \$\$" >/dev/null
mapfile -t R < <(find "$A/pg_wal/archive_status" -name '*.ready' -printf '%f\n' | sed -n 's/^\([0-9A-F]\{24\}\)\.ready$/\1/p' | sort)
[ "${#R[@]}" -ge 87 ] || fail "expected at least 87 finished segments waiting to be archived, found ${#R[@]}"
log "${#R[@]} real segments ready (${R[0]} .. ${R[-1]}), archive_command still empty"
X_TRICKLE=${R[0]}
X_BAD=${R[1]}
TRUNC=("${R[@]:2:12}")      # truncated under a raw client
TRUNC_CLI=("${R[@]:14:8}")  # truncated under archive-push
X_SAME=${R[22]}
DISTINCT=("${R[@]:23:64}")

# --- 1. framing ------------------------------------------------------------------------------
log "--- 1. one byte at a time; oversized frames"
py trickle "$SOCK" 0.08 "PUSH $X_TRICKLE" "$A/pg_wal/$X_TRICKLE" >"$T/work/fast.json" &
fast=$!
bg_register "$fast"
py trickle "$SOCK" 1.0 "PING" >"$T/work/slow.json" &
slow=$!
bg_register "$slow"
wait "$fast" || true
wait "$slow" || true
bg_stop "$fast"
bg_stop "$slow"
fast_doc=$(cat "$T/work/fast.json")
slow_doc=$(cat "$T/work/slow.json")
log "fast trickle: $fast_doc"
log "slow trickle: $slow_doc"
check_eq "$(jq -r .result <<<"$fast_doc" | head -n 1)" OK "PUSH $X_TRICKLE sent one byte every 0.08 s ($(jq -r .frame_bytes <<<"$fast_doc") bytes, $(jq -r .elapsed <<<"$fast_doc") s < request-timeout ${REQUEST_TIMEOUT} s) is served"
if wv_get_cmp "$X_TRICKLE" "$A/pg_wal/$X_TRICKLE"; then ok "the trickled push stored $X_TRICKLE intact"; else soft_fail "the trickled push did not store $X_TRICKLE intact"; fi
check_match '^CLOSED' "$(jq -r .result <<<"$slow_doc")" "PING sent one byte a second is cut off without an answer"
slow_secs=$(jq -r .elapsed <<<"$slow_doc")
check_eq "$(awk -v s="$slow_secs" -v t="$REQUEST_TIMEOUT" 'BEGIN { print (s >= t - 1.5 && s <= t + 2.5) }')" 1 \
  "... at the request-timeout deadline (${slow_secs}s after its first byte; request-timeout ${REQUEST_TIMEOUT}s), though each byte came within a second"
check_eq "$(( $(jq -r .sent <<<"$slow_doc") < 8 ))" 1 "... before its 8-byte frame was complete ($(jq -r .sent <<<"$slow_doc") bytes sent)"

rss0=$(d_kib VmRSS)
py oversize "$SOCK" 200 >"$T/work/oversize.json"
while IFS= read -r doc; do
  what=$(jq -r .case <<<"$doc")
  log "oversize: $doc" 
  if [ "$what" = repeat ]; then
    check_eq "$(jq -r .refused_and_closed <<<"$doc")" 200 "200 frames claiming 2 GiB+ each, each with 1 MiB behind it: all refused and closed ($(jq -r .secs <<<"$doc") s)"
    continue
  fi
  resp=$(jq -r '.response // "none"' <<<"$doc")
  want=$(jq -r .want <<<"$doc")
  check_eq "$(head -n 1 <<<"$resp")" "$want" "$what: answered $want"
  if [ "$want" != OK ]; then
    check_match 'frame length|unknown request' "$resp" "$what: the message says what was wrong"
  fi
  check_eq "$(jq -r .closed <<<"$doc")" true "$what: then the connection is closed ($(jq -r .junk_accepted <<<"$doc") junk bytes taken)"
done <"$T/work/oversize.json"
rss1=$(d_kib VmRSS)
log "VmRSS before the oversized frames $(mib "$rss0") MiB, after $(mib "$rss1") MiB"
check_eq "$(( rss1 - rss0 < 16 * 1024 ))" 1 "oversized frames do not grow walvaultd's memory (VmRSS $(mib "$rss0") -> $(mib "$rss1") MiB)"

log "VmHWM after the framing cases: $(mib "$(d_kib VmHWM)") MiB"

# --- 2. descriptors that are not WAL files ----------------------------------------------------
log "--- 2. descriptors that are not WAL files (name $X_BAD)"
BAD="$T/bad"
install -d -o postgres -g postgres "$BAD" "$BAD/fifo" "$BAD/dir" "$BAD/sock" "$BAD/zero" "$BAD/wo" "$BAD/sparse" "$BAD/wo2"
mkfifo "$BAD/fifo/$X_BAD"
install -d -o postgres -g postgres "$BAD/dir/$X_BAD"
ln -s /dev/zero "$BAD/zero/$X_BAD"
cp "$A/pg_wal/$X_BAD" "$BAD/wo/$X_BAD"
cp "$A/pg_wal/$X_BAD" "$BAD/wo2/$X_BAD"
chown -R postgres: "$BAD"
chmod 200 "$BAD/wo/$X_BAD"

for kind in fifo fifo-with-writer devzero; do
  path="$BAD/fifo/$X_BAD"
  doc=$(py badfd "$SOCK" "$X_BAD" "$kind" "$path")
  check_raw_refusal "$doc" "$X_BAD" 'not a regular file'
done
doc=$(py badfd "$SOCK" "$X_BAD" directory "$BAD/dir/$X_BAD")
check_raw_refusal "$doc" "$X_BAD" 'not a regular file'
doc=$(py badfd "$SOCK" "$X_BAD" socketpair)
check_raw_refusal "$doc" "$X_BAD" 'not a regular file'
doc=$(py badfd "$SOCK" "$X_BAD" listening-socket "$BAD/sock/$X_BAD")
check_raw_refusal "$doc" "$X_BAD" 'not a regular file'
# walvaultd only finds out when it reads: ERR io (its category for read errors), not invalid.
doc=$(py badfd "$SOCK" "$X_BAD" write-only "$BAD/wo2/$X_BAD")
check_raw_refusal "$doc" "$X_BAD" 'read.*bad file descriptor|not open for reading|write-only' '^ERR (invalid|io)$'
doc=$(py badfd "$SOCK" "$X_BAD" none)
check_raw_refusal "$doc" "$X_BAD" 'no file descriptor'
doc=$(py badfd "$SOCK" "$X_BAD" three "$A/pg_wal/$X_BAD")
check_raw_refusal "$doc" - 'descriptors'
not_stored "$X_BAD" "after the raw descriptor refusals"

wv_push "$BAD/dir/$X_BAD"
check_clear_push_error "archive-push of a directory" "$X_BAD" 'not a regular file'
wv_push "$BAD/sock/$X_BAD"
check_clear_push_error "archive-push of a Unix socket" "$X_BAD" 'no such device|not a regular file|socket'
wv_push "$BAD/zero/$X_BAD"
check_clear_push_error "archive-push of /dev/zero (through a symlink named $X_BAD)" "$X_BAD" 'not a regular file'
wv_push "$BAD/wo/$X_BAD"
check_clear_push_error "archive-push of a write-only (mode 0200) file" "$X_BAD" 'permission denied'

rss0=$(d_kib VmRSS)
truncate -s 20G "$BAD/sparse/$X_BAD"
truncate -s 20G "$BAD/sparse/$X_BAD.partial"
truncate -s 20G "$BAD/sparse/00000002.history"
install -d -o postgres -g postgres "$BAD/sparse2"
# The first 8 KiB of the real segment, then 20 GB of hole: a header that looks right.
head -c 8192 "$A/pg_wal/$X_BAD" >"$BAD/sparse2/$X_BAD"
truncate -s 20G "$BAD/sparse2/$X_BAD"
# Exactly the largest segment size PostgreSQL allows (1 GiB), with the real first page.
install -d -o postgres -g postgres "$BAD/sparse3"
head -c 8192 "$A/pg_wal/$X_BAD" >"$BAD/sparse3/$X_BAD"
truncate -s 1G "$BAD/sparse3/$X_BAD"
chown -R postgres: "$BAD/sparse" "$BAD/sparse2" "$BAD/sparse3"
wv_push "$BAD/sparse/$X_BAD"
check_clear_push_error "a sparse 20 GB file named $X_BAD" "$X_BAD" 'larger than any|size'
check_eq "$(awk -v s="$RUN_SECS" 'BEGIN { print (s < 10) }')" 1 "... refused without reading it (${RUN_SECS}s)"
wv_push "$BAD/sparse/$X_BAD.partial"
check_clear_push_error "a sparse 20 GB file named $X_BAD.partial" "$X_BAD.partial" 'larger than any|size'
wv_push "$BAD/sparse/00000002.history"
check_clear_push_error "a sparse 20 GB file named 00000002.history" 00000002.history 'larger than any|size'
wv_push "$BAD/sparse2/$X_BAD"
check_clear_push_error "a sparse 20 GB file with $X_BAD's real first page" "$X_BAD" 'larger than any|size'
wv_push "$BAD/sparse3/$X_BAD"
check_clear_push_error "a sparse 1 GiB file with $X_BAD's real first page" "$X_BAD" 'size'
check_eq "$(awk -v s="$RUN_SECS" 'BEGIN { print (s < 10) }')" 1 "... refused without reading it (${RUN_SECS}s)"
rss1=$(d_kib VmRSS)
check_eq "$(( rss1 - rss0 < 32 * 1024 ))" 1 "sparse 20 GB / 1 GiB files do not grow walvaultd's memory (VmRSS $(mib "$rss0") -> $(mib "$rss1") MiB)"
not_stored "$X_BAD" "after the archive-push refusals"
not_stored "$X_BAD.partial" "after the sparse .partial"
not_stored 00000002.history "after the sparse .history"
rm -f "$BAD/sparse/"* "$BAD/sparse2/"* "$BAD/sparse3/"*
check_daemons_alive
wv_push "$A/pg_wal/$X_BAD"
check_rc 0 "after all that, archive-push of the real $X_BAD"
if wv_get_cmp "$X_BAD" "$A/pg_wal/$X_BAD"; then ok "... and it restores intact"; else soft_fail "$X_BAD not restored intact"; fi

# --- 3. files truncated while walvaultd reads them ------------------------------------------
log "--- 3. files truncated while walvaultd reads them"
install -d -o postgres -g postgres "$T/trunc"
py truncrace "$SOCK" "$A/pg_wal" "$T/trunc" 0,1,2,4,6,8,12,16,25,40,60,100 "${TRUNC[@]}" >"$T/work/trunc.json"
trunc_ok=0 trunc_err=0 trunc_bad=0
while IFS= read -r doc; do
  log "truncated: $doc"
  name=$(jq -r .name <<<"$doc")
  case $(jq -r .status <<<"$doc") in
    OK) trunc_ok=$((trunc_ok + 1)) ;;
    ERR\ *)
      if grep -Fq "$name" <<<"$(jq -r .message <<<"$doc")"; then trunc_err=$((trunc_err + 1)); else trunc_bad=$((trunc_bad + 1)); fi
      ;;
    *) trunc_bad=$((trunc_bad + 1)) ;;
  esac
done <"$T/work/trunc.json"
# "file ended": the daemon saw the whole size, then the file shrank while it read.
mid_read=$(jq -r 'select(.message | test("file ended")) | .name' "$T/work/trunc.json" | wc -l)
log "truncation race: $trunc_ok read whole before the cut, $trunc_err refused ($mid_read of them cut while the daemon read)"
check_eq "$((trunc_ok + trunc_err))" "${#TRUNC[@]}" "12 pushes truncated mid-way: each answered OK ($trunc_ok, read before the cut) or with an error naming the file ($trunc_err); $trunc_bad otherwise"
for name in $(jq -r 'select(.status != "OK") | .name' "$T/work/trunc.json"); do
  rm -f "$T/work/tr"
  wv_get "$name" "$T/work/tr"
  check_rc 1 "refused truncated push of $name stored nothing"
done
rm -f "$T/work/tr"
py truncpush "$T/bin/archive-push" "$SOCK" "$A/pg_wal" "$T/trunc" 2,5,10,15,20,30,45,70 "${TRUNC_CLI[@]}" >"$T/work/truncpush.json"
cli_ok=0 cli_err=0
while IFS= read -r doc; do
  name=$(jq -r .name <<<"$doc")
  RUN_RC=$(jq -r .exit <<<"$doc")
  RUN_ERR=$(jq -r .stderr <<<"$doc" | sed '/^$/d')
  log "archive-push truncated after $(jq -r .truncated_at_ms <<<"$doc") ms: exit $RUN_RC ($(jq -r .secs <<<"$doc") s) $RUN_ERR"
  if [ "$RUN_RC" = 0 ]; then
    cli_ok=$((cli_ok + 1))
    continue
  fi
  cli_err=$((cli_err + 1))
  check_clear_push_error "archive-push of $name truncated while read" "$name" 'file ended|too short|refused|size|unable to read'
  not_stored "$name" "archive-push of $name truncated while read"
done <"$T/work/truncpush.json"
check_eq "$((cli_ok + cli_err))" "${#TRUNC_CLI[@]}" "8 archive-push runs truncated mid-way: each exits 0 ($cli_ok) or 1 ($cli_err)"
check_daemons_alive

log "VmHWM after the descriptor and truncation cases: $(mib "$(d_kib VmHWM)") MiB"

# --- 4. load: 200 idle connections, 128 pushers, PostgreSQL archiving -----------------------
log "--- 4. load"
fds_before=$(d_fds)
threads_before=$(d_threads)
log "before the load: $fds_before descriptors, $threads_before threads"
# setpriv, not runuser: $! is python itself, which bg_stop can end without runuser's noise.
setpriv --reuid postgres --regid postgres --init-groups "$PG_PYTHON" "$PY" idle "$SOCK" 200 "$T/work/idle.ready" "$T/work/idle.json" &
IDLE=$!
bg_register "$IDLE"
idle_ready() {
  [ -e "$T/work/idle.ready" ] && return 0
  kill -0 "$IDLE" 2>/dev/null || fail "the idle client exited before opening its connections"
  return 1
}
wait_for 60 "200 idle connections to be open" idle_ready
idle_fds=$(d_fds)
log "200 idle connections open: walvaultd has $idle_fds descriptors"
load_t0=$(date +%s.%N)
psql_q "$A" "alter system set archive_command = '$T/bin/archive-push --socket $SOCK --timeout 120 %p'" >/dev/null
psql_q "$A" "select pg_reload_conf()" >/dev/null
mkdir -p "$T/work/rc"
chown postgres: "$T/work/rc"
pushers=()
for seg in "${DISTINCT[@]}"; do
  runuser -u postgres -- sh -c "'$T/bin/archive-push' --socket '$SOCK' --timeout 120 '$A/pg_wal/$seg' 2>'$T/work/rc/$seg.err'; echo \$? >'$T/work/rc/$seg.rc'" &
  pushers+=($!)
  bg_register "$!"
done
for i in $(seq 1 64); do
  runuser -u postgres -- sh -c "'$T/bin/archive-push' --socket '$SOCK' --timeout 120 '$A/pg_wal/$X_SAME' 2>'$T/work/rc/same.$i.err'; echo \$? >'$T/work/rc/same.$i.rc'" &
  pushers+=($!)
  bg_register "$!"
done
# New WAL while all that happens: PostgreSQL's archiver must get these through too.
new_last=""
for _ in 1 2 3 4 5; do
  new_last=$(pg_switch "$A")
  sleep 0.3
done
pushers_done() { [ "$(find "$T/work/rc" -name '*.rc' | wc -l)" -ge 128 ]; }
wait_for 150 "the 128 concurrent archive-push clients to finish" pushers_done
load_secs=$(awk -v a="$load_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
# Each has written its exit status: reap them and drop them from lib.sh's list of jobs to stop
# (no kill: runuser would complain).
for p in "${pushers[@]}"; do
  wait "$p" 2>/dev/null || true
  for i in "${!WV_BG_PIDS[@]}"; do
    [ "${WV_BG_PIDS[$i]}" = "$p" ] && unset 'WV_BG_PIDS[i]'
  done
done
distinct_ok=0 same_ok=0
for seg in "${DISTINCT[@]}"; do
  if [ "$(cat "$T/work/rc/$seg.rc")" = 0 ]; then distinct_ok=$((distinct_ok + 1)); else log "push of $seg: exit $(cat "$T/work/rc/$seg.rc"): $(cat "$T/work/rc/$seg.err")"; fi
done
for i in $(seq 1 64); do
  if [ "$(cat "$T/work/rc/same.$i.rc")" = 0 ]; then same_ok=$((same_ok + 1)); else log "push $i of $X_SAME: exit $(cat "$T/work/rc/same.$i.rc"): $(cat "$T/work/rc/same.$i.err")"; fi
done
check_eq "$distinct_ok" 64 "64 concurrent archive-push of 64 distinct segments behind 200 idle connections: all exit 0 (${load_secs}s for all 128)"
check_eq "$same_ok" 64 "64 concurrent archive-push of the same segment $X_SAME: all exit 0"
wait_for 60 "the idle connections' summary" test -e "$T/work/idle.json"
idle_doc=$(cat "$T/work/idle.json")
log "idle connections: $idle_doc"
check_eq "$(jq -r .closed_by_daemon <<<"$idle_doc")" 200 "walvaultd closed all 200 idle connections itself"
check_eq "$(( $(jq -r .greeted <<<"$idle_doc") + $(jq -r .busy <<<"$idle_doc") ))" 200 "... each after a greeting ($(jq -r .greeted <<<"$idle_doc")) or BUSY ($(jq -r .busy <<<"$idle_doc"))"
check_eq "$(( $(jq -r .greeted <<<"$idle_doc") <= 64 ))" 1 "idle clients held at most max-connections (64) slots"
gmax=$(jq -r '.greeted_closed_after_max // 0' <<<"$idle_doc")
check_eq "$(awk -v s="$gmax" -v t="$REQUEST_TIMEOUT" 'BEGIN { print (s <= t + 3) }')" 1 "greeted idle connections closed by request-timeout (last after ${gmax}s)"
wait_archived "$A" "$new_last" 90
check_eq "$(psql_q "$A" "select failed_count from pg_stat_archiver")" 0 "PostgreSQL's archive_command never failed during the load (pg_stat_archiver.failed_count 0)"
kill -0 "$IDLE" 2>/dev/null || fail "the idle client exited early: the descriptor check below would prove nothing"
settle 20 fds_at_most "$fds_before"
fds_after=$(d_fds)
check_eq "$(( fds_after <= fds_before ))" 1 "walvaultd's descriptors back to $fds_after ($fds_before before; $idle_fds with the idle connections open) after the load, while the idle clients still hold their ends"
bg_stop "$IDLE"
wv_cli_json list
missing=0
for seg in "${R[@]}"; do
  jq -e --arg n "$seg" 'any(.segments[]; .name == $n)' <<<"$RUN_OUT" >/dev/null || { missing=$((missing + 1)); log "not listed: $seg"; }
done
check_eq "$missing" 0 "all ${#R[@]} segments are in the archive"
sample_bad=0
for seg in "${TRUNC[@]}" "${TRUNC_CLI[@]}" "$X_SAME" "${DISTINCT[0]}" "${DISTINCT[31]}" "${DISTINCT[63]}" "$new_last"; do
  wv_get_cmp "$seg" "$A/pg_wal/$seg" || sample_bad=$((sample_bad + 1))
done
check_eq "$sample_bad" 0 "the 20 truncation-race names, $X_SAME, 3 of the 64 and the newest segment restore byte for byte"

log "VmHWM after the load: $(mib "$(d_kib VmHWM)") MiB; walvaultd answered BUSY $(grep -c 'answered BUSY' "${WV_DAEMON_LOG[$D]}" || true) times"

# --- 5. 10,000 cheap requests: no descriptor or thread leak ----------------------------------
log "--- 5. $FLOOD_REQUESTS requests"
runuser -u postgres -- touch "$T/work/empty"
fds_before=$(d_fds)
threads_before=$(d_threads)
flood_doc=$(py flood "$SOCK" "$FLOOD_REQUESTS" 4 "$T/work/empty")
log "flood: $flood_doc"
check_eq "$(jq -r .requests <<<"$flood_doc")" "$FLOOD_REQUESTS" "$FLOOD_REQUESTS requests answered ($(jq -r .per_second <<<"$flood_doc")/s, $(jq -r .secs <<<"$flood_doc") s)"
check_eq "$(jq -r .unexpected <<<"$flood_doc")" 0 "every answer as expected: $(jq -c .counts <<<"$flood_doc") $(jq -c .unexpected_examples <<<"$flood_doc")"
check_eq "$(stat -c %s "$T/work/empty")" 0 "GET answered NOTFOUND wrote nothing into the passed file"
settle 10 fds_at_most "$fds_before"
fds_after=$(d_fds)
check_eq "$(( fds_after <= fds_before ))" 1 "no descriptor leak: $fds_before before, $fds_after after $FLOOD_REQUESTS requests"
settle 10 threads_at_most "$threads_before"
threads_after=$(d_threads)
check_eq "$(( threads_after <= threads_before ))" 1 "no thread leak: $threads_before before, $threads_after after"

# --- 6. memory and a clean exit --------------------------------------------------------------
hwm=$(d_kib VmHWM)
log "walvaultd peak RSS (VmHWM): $(mib "$hwm") MiB; now VmRSS $(mib "$(d_kib VmRSS)") MiB"
echo "walvaultd peak RSS: $(mib "$hwm") MiB ($([ "$SANITIZED" = 1 ] && echo ASan+UBSan || echo release) build; bound ${RSS_BOUND_MIB} MiB)"
check_eq "$(( hwm < RSS_BOUND_MIB * 1024 ))" 1 "walvaultd's peak RSS $(mib "$hwm") MiB stays under ${RSS_BOUND_MIB} MiB"
check_daemons_alive
pg_stop "$A"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM after all that"
finish
