/*
 * walvault_faults.c: an LD_PRELOAD shim that injects file-system faults into one process
 * (walvaultd in tests/integration/faults.sh): I/O errors, a full or read-only file system,
 * slow I/O, for paths under a chosen prefix only. Test code, never shipped.
 *
 * Build:  cc -shared -fPIC -O1 -Wall -Wextra -o libwalvault_faults.so walvault_faults.c -ldl
 * Use:    WALVAULT_FAULTS=/path/to/rules LD_PRELOAD=/path/to/libwalvault_faults.so walvaultd ...
 *         (with an AddressSanitizer build, libasan must come first:
 *          LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libasan.so.8:/path/to/libwalvault_faults.so)
 *
 * Environment:
 *   WALVAULT_FAULTS      the rules file (unset: the shim passes every call through untouched).
 *                        It is looked at (one stat) on every intercepted call and re-read when
 *                        its inode, size or mtime changes, so a test switches faults on and off
 *                        while the process runs. Write it atomically (write a temporary file,
 *                        then mv it over the rules file): a new inode is always noticed, even
 *                        within one mtime tick. A missing or empty file means no faults.
 *   WALVAULT_FAULTS_LOG  file that gets one line per injected fault ("walvault_faults: pid P:
 *                        write /repo/wal/...: EIO"); unset: the process's stderr.
 *
 * Rules: one per line; blank lines and lines starting with '#' are ignored.
 *
 *   OPS EFFECT PREFIX [count=N]
 *
 *   OPS     comma-separated operation classes:
 *             open-read   open/openat of an existing file for reading (O_RDONLY, no O_CREAT);
 *                         this includes the O_DIRECTORY opens done to fsync a directory
 *             open-write  open/openat with O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND or O_TMPFILE
 *             open        both of the above
 *             read        read, pread(64), readv, preadv(64), __read_chk, __pread(64)_chk, and the
 *                         input side of copy_file_range / sendfile
 *             write       write, pwrite(64), writev, pwritev(64), and the output side of
 *                         copy_file_range / sendfile
 *             fsync-file  fsync, fdatasync, sync_file_range on anything but a directory
 *             fsync-dir   fsync, fdatasync on a directory
 *             fsync       both of the above
 *             rename      rename, renameat, renameat2 (either name under PREFIX)
 *             link        link, linkat (either name under PREFIX)
 *             mkdir       mkdir, mkdirat
 *             unlink      unlink, unlinkat, rmdir
 *             truncate    ftruncate(64), truncate(64), fallocate(64), posix_fallocate(64)
 *             modify      what a read-only remount refuses: open-write, write, rename, link,
 *                         mkdir, unlink, truncate (not fsync: syncing works on a read-only mount)
 *             all         every class
 *   EFFECT  an errno name: EIO ENOSPC EROFS EDQUOT EACCES EPERM ENOENT EEXIST EBUSY EAGAIN EINTR
 *           ETIMEDOUT ESTALE EFBIG EMFILE ENFILE EXDEV EOPNOTSUPP: the call fails with it (returns -1, sets
 *           errno, does nothing);
 *           or slow=DURATION (250ms, 2s; a bare number is milliseconds): the call sleeps that long,
 *           then runs normally.
 *   PREFIX  an absolute path; a call matches when the path it works on is PREFIX or lies below it
 *           (/x/repo matches /x/repo and /x/repo/wal/f, not /x/repository). Path arguments that
 *           are relative are resolved against the working directory or the dirfd (no ".."
 *           normalisation); descriptor calls resolve their path with readlink(/proc/self/fd/N)
 *           at each call (nothing cached), so a file renamed since it was opened is judged by its
 *           current name. Sockets, pipes and anything without a path never match.
 *   count=N the rule fires for its first N matching calls after the rules file was (re)loaded,
 *           then stays inert (default: every matching call).
 *
 *   The first rule that matches a call decides it. Examples:
 *     write EIO /tmp/t/repo
 *     fsync-dir EIO /tmp/t/repo
 *     write ENOSPC /tmp/t/repo
 *     modify EROFS /tmp/t/repo
 *     read EIO /tmp/t/repo
 *     write,fsync slow=300ms /tmp/t/repo
 *
 * Thread-safe: the rule table is guarded by one mutex, held only to reload and to match (never
 * while sleeping or during the real call), and across fork() (pthread_atfork) so a child never
 * inherits it locked. The shim's own file access (the rules file, the log)
 * goes through raw system calls, and a thread-local guard passes through any call made while
 * the shim itself is working, so it cannot recurse. Calls on paths outside every rule's prefix
 * (SQLite's index elsewhere, sockets, logs) only pay one stat of the rules file.
 */
/* The plain names and the *64 ones are defined separately below: no header may map one onto the
 * other (_FILE_OFFSET_BITS), nor wrap them in inline checks (_FORTIFY_SOURCE). */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

enum {
  OP_OPEN_READ = 1u << 0,
  OP_OPEN_WRITE = 1u << 1,
  OP_READ = 1u << 2,
  OP_WRITE = 1u << 3,
  OP_FSYNC_FILE = 1u << 4,
  OP_FSYNC_DIR = 1u << 5,
  OP_RENAME = 1u << 6,
  OP_LINK = 1u << 7,
  OP_MKDIR = 1u << 8,
  OP_UNLINK = 1u << 9,
  OP_TRUNCATE = 1u << 10,
  OP_FSYNC = OP_FSYNC_FILE | OP_FSYNC_DIR,
  OP_MODIFY = OP_OPEN_WRITE | OP_WRITE | OP_RENAME | OP_LINK | OP_MKDIR | OP_UNLINK | OP_TRUNCATE,
  OP_ALL = (1u << 11) - 1,
};

static const struct {
  const char *name;
  unsigned ops;
} op_names[] = {
    {"open-read", OP_OPEN_READ}, {"open-write", OP_OPEN_WRITE}, {"open", OP_OPEN_READ | OP_OPEN_WRITE},
    {"read", OP_READ},           {"write", OP_WRITE},           {"fsync-file", OP_FSYNC_FILE},
    {"fsync-dir", OP_FSYNC_DIR}, {"fsync", OP_FSYNC},           {"rename", OP_RENAME},
    {"link", OP_LINK},           {"mkdir", OP_MKDIR},           {"unlink", OP_UNLINK},
    {"truncate", OP_TRUNCATE},   {"modify", OP_MODIFY},         {"all", OP_ALL},
};

static const struct {
  const char *name;
  int value;
} errno_names[] = {
    {"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EROFS", EROFS},         {"EDQUOT", EDQUOT}, {"EACCES", EACCES},
    {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EEXIST", EEXIST},       {"EBUSY", EBUSY},   {"EAGAIN", EAGAIN},
    {"EINTR", EINTR},   {"ETIMEDOUT", ETIMEDOUT}, {"ESTALE", ESTALE}, {"EFBIG", EFBIG},   {"EMFILE", EMFILE},
    {"ENFILE", ENFILE}, {"EXDEV", EXDEV}, {"EOPNOTSUPP", EOPNOTSUPP},
};

#define MAX_RULES 64
#define MAX_PREFIX 1024
#define PATH_BUF 4096

struct rule {
  unsigned ops;
  int err;           /* errno to fail with; 0: slow */
  long delay_ms;     /* slow=... */
  long remaining;    /* count=N left; -1: unlimited */
  size_t prefix_len;
  char prefix[MAX_PREFIX];
};

struct decision {
  int err;
  long delay_ms;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rule g_rules[MAX_RULES];
static int g_rule_count;
static unsigned g_ops_any;           /* union of the rules' ops: the cheap "no rule for this op" test */
static int g_loaded;                 /* a rules file has been looked at */
static struct stat g_seen;           /* the rules file as last loaded (st_ino 0: absent) */
static int g_state = -1;             /* -1: not initialised; 0: off (no WALVAULT_FAULTS); 1: on */
static char g_rules_path[PATH_BUF];
static char g_log_path[PATH_BUF];
static __thread int t_busy __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------------------------------ */
/* The real functions */

#define REAL(ret, name, params)                                                                \
  static ret(*real_##name) params;                                                            \
  static ret(*resolve_##name(void)) params {                                                  \
    ret(*fn) params = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);                        \
    if (!fn) {                                                                                \
      fn = (ret(*) params)dlsym(RTLD_NEXT, #name);                                            \
      __atomic_store_n(&real_##name, fn, __ATOMIC_RELEASE);                                   \
    }                                                                                         \
    return fn;                                                                                \
  }

REAL(int, open, (const char *, int, ...))
REAL(int, open64, (const char *, int, ...))
REAL(int, openat, (int, const char *, int, ...))
REAL(int, openat64, (int, const char *, int, ...))
REAL(int, __open_2, (const char *, int))
REAL(int, __open64_2, (const char *, int))
REAL(int, __openat_2, (int, const char *, int))
REAL(int, __openat64_2, (int, const char *, int))
REAL(ssize_t, read, (int, void *, size_t))
REAL(ssize_t, __read_chk, (int, void *, size_t, size_t))
REAL(ssize_t, pread, (int, void *, size_t, off_t))
REAL(ssize_t, pread64, (int, void *, size_t, off64_t))
REAL(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t))
REAL(ssize_t, __pread64_chk, (int, void *, size_t, off64_t, size_t))
REAL(ssize_t, readv, (int, const struct iovec *, int))
REAL(ssize_t, preadv, (int, const struct iovec *, int, off_t))
REAL(ssize_t, preadv64, (int, const struct iovec *, int, off64_t))
REAL(ssize_t, write, (int, const void *, size_t))
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
REAL(ssize_t, pwrite64, (int, const void *, size_t, off64_t))
REAL(ssize_t, writev, (int, const struct iovec *, int))
REAL(ssize_t, pwritev, (int, const struct iovec *, int, off_t))
REAL(ssize_t, pwritev64, (int, const struct iovec *, int, off64_t))
REAL(ssize_t, copy_file_range, (int, off64_t *, int, off64_t *, size_t, unsigned int))
REAL(ssize_t, sendfile, (int, int, off_t *, size_t))
REAL(ssize_t, sendfile64, (int, int, off64_t *, size_t))
REAL(int, fsync, (int))
REAL(int, fdatasync, (int))
REAL(int, sync_file_range, (int, off64_t, off64_t, unsigned int))
REAL(int, rename, (const char *, const char *))
REAL(int, renameat, (int, const char *, int, const char *))
REAL(int, renameat2, (int, const char *, int, const char *, unsigned int))
REAL(int, link, (const char *, const char *))
REAL(int, linkat, (int, const char *, int, const char *, int))
REAL(int, mkdir, (const char *, mode_t))
REAL(int, mkdirat, (int, const char *, mode_t))
REAL(int, unlink, (const char *))
REAL(int, unlinkat, (int, const char *, int))
REAL(int, rmdir, (const char *))
REAL(int, ftruncate, (int, off_t))
REAL(int, ftruncate64, (int, off64_t))
REAL(int, truncate, (const char *, off_t))
REAL(int, truncate64, (const char *, off64_t))
REAL(int, fallocate, (int, int, off_t, off_t))
REAL(int, fallocate64, (int, int, off64_t, off64_t))
REAL(int, posix_fallocate, (int, off_t, off_t))
REAL(int, posix_fallocate64, (int, off64_t, off64_t))

/* A function libc lacks: fail like an unimplemented system call. */
#define MISSING(fn)   \
  if (!(fn)) {        \
    errno = ENOSYS;   \
    return -1;        \
  }

/* ------------------------------------------------------------------------------------------ */
/* Small helpers on raw system calls (never intercepted, by us or by a sanitizer) */

static void raw_write_all(int fd, const char *text, size_t len) {
  while (len > 0) {
    long n = syscall(SYS_write, fd, text, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    len -= (size_t)n;
  }
}

static void note(const char *what, const char *path, const struct decision *d) {
  char line[PATH_BUF + 128];
  int saved = errno;
  const char *effect = "?";
  char slow[48];
  for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; ++i)
    if (errno_names[i].value == d->err) effect = errno_names[i].name;
  if (!d->err) {
    snprintf(slow, sizeof slow, "slow %ldms", d->delay_ms);
    effect = slow;
  }
  int len = snprintf(line, sizeof line, "walvault_faults: pid %ld: %s %s: %s\n", (long)getpid(), what, path, effect);
  if (len > (int)sizeof line - 1) len = (int)sizeof line - 1;
  if (len > 0) {
    if (g_log_path[0]) {
      long fd = syscall(SYS_openat, AT_FDCWD, g_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        raw_write_all((int)fd, line, (size_t)len);
        syscall(SYS_close, fd);
      }
    } else {
      raw_write_all(2, line, (size_t)len);
    }
  }
  errno = saved;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') ++s;
  char *end = s + strlen(s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = '\0';
  return s;
}

/* "250ms", "2s", "250": milliseconds, or -1. */
static long parse_duration(const char *text) {
  char *end = NULL;
  long value = strtol(text, &end, 10);
  if (end == text || value < 0) return -1;
  if (*end == '\0' || strcmp(end, "ms") == 0) return value;
  if (strcmp(end, "s") == 0) return value * 1000;
  return -1;
}

static void complain(int line_no, const char *why) {
  char text[256];
  int len = snprintf(text, sizeof text, "walvault_faults: %s line %d: %s (line ignored)\n", g_rules_path, line_no, why);
  if (len > 0) raw_write_all(2, text, (size_t)(len < (int)sizeof text ? len : (int)sizeof text - 1));
}

static int parse_rule(char *line, int line_no, struct rule *out) {
  char *save = NULL;
  char *ops = strtok_r(line, " \t", &save);
  char *effect = strtok_r(NULL, " \t", &save);
  char *prefix = strtok_r(NULL, " \t", &save);
  if (!ops || !effect || !prefix) return complain(line_no, "expected OPS EFFECT PREFIX"), -1;
  memset(out, 0, sizeof *out);
  out->remaining = -1;
  char *op_save = NULL;
  for (char *op = strtok_r(ops, ",", &op_save); op; op = strtok_r(NULL, ",", &op_save)) {
    unsigned found = 0;
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; ++i)
      if (strcmp(op, op_names[i].name) == 0) found = op_names[i].ops;
    if (!found) return complain(line_no, "unknown operation class"), -1;
    out->ops |= found;
  }
  if (strncmp(effect, "slow=", 5) == 0) {
    out->delay_ms = parse_duration(effect + 5);
    if (out->delay_ms < 0) return complain(line_no, "bad slow=DURATION"), -1;
  } else {
    for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; ++i)
      if (strcmp(effect, errno_names[i].name) == 0) out->err = errno_names[i].value;
    if (!out->err) return complain(line_no, "unknown effect (an errno name or slow=DURATION)"), -1;
  }
  size_t len = strlen(prefix);
  while (len > 1 && prefix[len - 1] == '/') prefix[--len] = '\0';
  if (prefix[0] != '/' || len >= MAX_PREFIX) return complain(line_no, "PREFIX must be an absolute path"), -1;
  memcpy(out->prefix, prefix, len + 1);
  out->prefix_len = len;
  for (char *opt = strtok_r(NULL, " \t", &save); opt; opt = strtok_r(NULL, " \t", &save)) {
    if (strncmp(opt, "count=", 6) == 0) {
      char *end = NULL;
      out->remaining = strtol(opt + 6, &end, 10);
      if (end == opt + 6 || *end != '\0' || out->remaining < 0) return complain(line_no, "bad count=N"), -1;
    } else {
      return complain(line_no, "unknown option"), -1;
    }
  }
  return 0;
}

/* Called with g_lock held: re-reads the rules file when it changed since the last look. */
static void reload_locked(void) {
  struct stat st;
  memset(&st, 0, sizeof st);
  if (syscall(SYS_newfstatat, AT_FDCWD, g_rules_path, &st, 0) != 0) memset(&st, 0, sizeof st);
  if (g_loaded && st.st_ino == g_seen.st_ino && st.st_dev == g_seen.st_dev && st.st_size == g_seen.st_size &&
      st.st_mtim.tv_sec == g_seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == g_seen.st_mtim.tv_nsec)
    return;
  g_loaded = 1;
  g_seen = st;
  g_rule_count = 0;
  g_ops_any = 0;
  if (st.st_ino == 0) return;
  static char text[65536];
  size_t used = 0;
  long fd = syscall(SYS_openat, AT_FDCWD, g_rules_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  for (;;) {
    long n = syscall(SYS_read, fd, text + used, sizeof text - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += (size_t)n;
    if (used == sizeof text - 1) break;
  }
  syscall(SYS_close, fd);
  text[used] = '\0';
  int line_no = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    ++line_no;
    line = trim(line);
    if (*line == '\0' || *line == '#') continue;
    if (g_rule_count == MAX_RULES) {
      complain(line_no, "too many rules");
      break;
    }
    if (parse_rule(line, line_no, &g_rules[g_rule_count]) == 0) g_ops_any |= g_rules[g_rule_count++].ops;
  }
}

/* A fork while another thread holds g_lock would leave the child (which may open /dev/null,
 * dup2 and write before it execs) blocked for good: hold the lock across fork instead. */
static void before_fork(void) { pthread_mutex_lock(&g_lock); }
static void after_fork(void) { pthread_mutex_unlock(&g_lock); }
__attribute__((constructor)) static void init_shim(void) { pthread_atfork(before_fork, after_fork, after_fork); }

static int enabled(void) {
  int state = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
  if (state >= 0) return state;
  pthread_mutex_lock(&g_lock);
  if (g_state < 0) {
    const char *rules = getenv("WALVAULT_FAULTS");
    const char *log = getenv("WALVAULT_FAULTS_LOG");
    if (rules && *rules && strlen(rules) < sizeof g_rules_path) {
      strcpy(g_rules_path, rules);
      if (log && strlen(log) < sizeof g_log_path) strcpy(g_log_path, log);
      __atomic_store_n(&g_state, 1, __ATOMIC_RELEASE);
    } else {
      __atomic_store_n(&g_state, 0, __ATOMIC_RELEASE);
    }
  }
  pthread_mutex_unlock(&g_lock);
  return g_state;
}

/* Does some rule (after a reload if the file changed) name one of `ops`? */
static int wanted(unsigned ops) {
  if (t_busy || !enabled()) return 0;
  pthread_mutex_lock(&g_lock);
  reload_locked();
  unsigned any = g_ops_any;
  pthread_mutex_unlock(&g_lock);
  return (any & ops) != 0;
}

static int under(const struct rule *r, const char *path) {
  if (!path || !path[0]) return 0;
  if (strncmp(path, r->prefix, r->prefix_len) != 0) return 0;
  return path[r->prefix_len] == '\0' || path[r->prefix_len] == '/' || r->prefix_len == 1;
}

static struct decision match(unsigned op, const char *what, const char *path1, const char *path2) {
  struct decision d = {0, 0};
  const char *hit = NULL;
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < g_rule_count; ++i) {
    struct rule *r = &g_rules[i];
    if (!(r->ops & op) || r->remaining == 0) continue;
    if (under(r, path1)) hit = path1;
    else if (under(r, path2)) hit = path2;
    else continue;
    if (r->remaining > 0) --r->remaining;
    d.err = r->err;
    d.delay_ms = r->delay_ms;
    break;
  }
  pthread_mutex_unlock(&g_lock);
  if (hit) note(what, hit, &d);
  return d;
}

/* The absolute path of `path` as seen from dirfd; 0 on success. */
static int resolve_at(int dirfd, const char *path, char *out, size_t size) {
  if (!path) return -1;
  if (path[0] == '/') {
    if (strlen(path) >= size) return -1;
    strcpy(out, path);
    return 0;
  }
  size_t len;
  if (dirfd == AT_FDCWD) {
    long n = syscall(SYS_getcwd, out, size);
    if (n <= 0) return -1;
    len = strlen(out);
  } else {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, proc, out, size - 1);
    if (n <= 0) return -1;
    out[n] = '\0';
    len = (size_t)n;
  }
  if (out[0] != '/' || len + 1 + strlen(path) >= size) return -1;
  out[len] = '/';
  strcpy(out + len + 1, path);
  return 0;
}

static int fd_path(int fd, char *out, size_t size) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  long n = syscall(SYS_readlinkat, AT_FDCWD, proc, out, size - 1);
  if (n <= 0) return -1;
  out[n] = '\0';
  return out[0] == '/' ? 0 : -1; /* sockets, pipes, anon inodes: no path */
}

/* Applies the decision: sleeps for slow; returns -1 with errno set for an error, else 0. */
static int apply(struct decision d) {
  if (d.delay_ms > 0) {
    struct timespec ts = {d.delay_ms / 1000, (d.delay_ms % 1000) * 1000000L};
    while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {
    }
  }
  if (d.err) {
    errno = d.err;
    return -1;
  }
  return 0;
}

/* The fault for a call on one descriptor (0: none; -1: fail with errno set). */
static int fault_fd(unsigned op, const char *what, int fd) {
  if (!wanted(op)) return 0;
  ++t_busy;
  char path[PATH_BUF];
  struct decision d = {0, 0};
  if (fd_path(fd, path, sizeof path) == 0) d = match(op, what, path, NULL);
  --t_busy;
  return apply(d);
}

static int fault_fsync(const char *what, int fd) {
  if (!wanted(OP_FSYNC)) return 0;
  ++t_busy;
  struct stat st;
  unsigned op = OP_FSYNC_FILE;
  if (syscall(SYS_fstat, fd, &st) == 0 && S_ISDIR(st.st_mode)) op = OP_FSYNC_DIR;
  char path[PATH_BUF];
  struct decision d = {0, 0};
  if (fd_path(fd, path, sizeof path) == 0) d = match(op, what, path, NULL);
  --t_busy;
  return apply(d);
}

/* The fault for a call on one or two paths (relative to dirfds). */
static int fault_path(unsigned op, const char *what, int dirfd1, const char *path1, int dirfd2, const char *path2) {
  if (!wanted(op)) return 0;
  ++t_busy;
  char abs1[PATH_BUF], abs2[PATH_BUF];
  int ok1 = resolve_at(dirfd1, path1, abs1, sizeof abs1) == 0;
  int ok2 = path2 && resolve_at(dirfd2, path2, abs2, sizeof abs2) == 0;
  struct decision d = match(op, what, ok1 ? abs1 : NULL, ok2 ? abs2 : NULL);
  --t_busy;
  return apply(d);
}

static unsigned open_op(int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) || (flags & O_TMPFILE) == O_TMPFILE)
    return OP_OPEN_WRITE;
  return OP_OPEN_READ;
}

static int needs_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

/* ------------------------------------------------------------------------------------------ */
/* open */

#define OPEN_MODE(flags, mode)            \
  mode_t mode = 0;                        \
  if (needs_mode(flags)) {                \
    va_list args;                         \
    va_start(args, flags);                \
    mode = (mode_t)va_arg(args, int);     \
    va_end(args);                         \
  }

EXPORT int open(const char *path, int flags, ...) {
  OPEN_MODE(flags, mode);
  if (fault_path(open_op(flags), "open", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_open());
  return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
  OPEN_MODE(flags, mode);
  if (fault_path(open_op(flags), "open", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_open64());
  return real_open64(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  OPEN_MODE(flags, mode);
  if (fault_path(open_op(flags), "openat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_openat());
  return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  OPEN_MODE(flags, mode);
  if (fault_path(open_op(flags), "openat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_openat64());
  return real_openat64(dirfd, path, flags, mode);
}

EXPORT int __open_2(const char *path, int flags) {
  if (fault_path(open_op(flags), "open", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve___open_2());
  return real___open_2(path, flags);
}

EXPORT int __open64_2(const char *path, int flags) {
  if (fault_path(open_op(flags), "open", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve___open64_2());
  return real___open64_2(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags) {
  if (fault_path(open_op(flags), "openat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve___openat_2());
  return real___openat_2(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
  if (fault_path(open_op(flags), "openat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve___openat64_2());
  return real___openat64_2(dirfd, path, flags);
}

/* ------------------------------------------------------------------------------------------ */
/* read and write */

#define FD_CALL(op, name, fd, args)                 \
  if (fault_fd(op, #name, fd) != 0) return -1;     \
  MISSING(resolve_##name());                        \
  return real_##name args;

EXPORT ssize_t read(int fd, void *buf, size_t n) { FD_CALL(OP_READ, read, fd, (fd, buf, n)) }
EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) { FD_CALL(OP_READ, __read_chk, fd, (fd, buf, n, buflen)) }
EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off) { FD_CALL(OP_READ, pread, fd, (fd, buf, n, off)) }
EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off) { FD_CALL(OP_READ, pread64, fd, (fd, buf, n, off)) }
EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) {
  FD_CALL(OP_READ, __pread_chk, fd, (fd, buf, n, off, buflen))
}
EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen) {
  FD_CALL(OP_READ, __pread64_chk, fd, (fd, buf, n, off, buflen))
}
EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt) { FD_CALL(OP_READ, readv, fd, (fd, iov, cnt)) }
EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off) { FD_CALL(OP_READ, preadv, fd, (fd, iov, cnt, off)) }
EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off) { FD_CALL(OP_READ, preadv64, fd, (fd, iov, cnt, off)) }

EXPORT ssize_t write(int fd, const void *buf, size_t n) { FD_CALL(OP_WRITE, write, fd, (fd, buf, n)) }
EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { FD_CALL(OP_WRITE, pwrite, fd, (fd, buf, n, off)) }
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) { FD_CALL(OP_WRITE, pwrite64, fd, (fd, buf, n, off)) }
EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) { FD_CALL(OP_WRITE, writev, fd, (fd, iov, cnt)) }
EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) { FD_CALL(OP_WRITE, pwritev, fd, (fd, iov, cnt, off)) }
EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
  FD_CALL(OP_WRITE, pwritev64, fd, (fd, iov, cnt, off))
}

EXPORT ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t n, unsigned int flags) {
  if (fault_fd(OP_READ, "copy_file_range", in) != 0 || fault_fd(OP_WRITE, "copy_file_range", out) != 0) return -1;
  MISSING(resolve_copy_file_range());
  return real_copy_file_range(in, in_off, out, out_off, n, flags);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  if (fault_fd(OP_READ, "sendfile", in) != 0 || fault_fd(OP_WRITE, "sendfile", out) != 0) return -1;
  MISSING(resolve_sendfile());
  return real_sendfile(out, in, off, n);
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n) {
  if (fault_fd(OP_READ, "sendfile", in) != 0 || fault_fd(OP_WRITE, "sendfile", out) != 0) return -1;
  MISSING(resolve_sendfile64());
  return real_sendfile64(out, in, off, n);
}

/* ------------------------------------------------------------------------------------------ */
/* sync */

EXPORT int fsync(int fd) {
  if (fault_fsync("fsync", fd) != 0) return -1;
  MISSING(resolve_fsync());
  return real_fsync(fd);
}

EXPORT int fdatasync(int fd) {
  if (fault_fsync("fdatasync", fd) != 0) return -1;
  MISSING(resolve_fdatasync());
  return real_fdatasync(fd);
}

EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  if (fault_fsync("sync_file_range", fd) != 0) return -1;
  MISSING(resolve_sync_file_range());
  return real_sync_file_range(fd, off, n, flags);
}

/* ------------------------------------------------------------------------------------------ */
/* names */

EXPORT int rename(const char *from, const char *to) {
  if (fault_path(OP_RENAME, "rename", AT_FDCWD, from, AT_FDCWD, to) != 0) return -1;
  MISSING(resolve_rename());
  return real_rename(from, to);
}

EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to) {
  if (fault_path(OP_RENAME, "renameat", fromfd, from, tofd, to) != 0) return -1;
  MISSING(resolve_renameat());
  return real_renameat(fromfd, from, tofd, to);
}

EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
  if (fault_path(OP_RENAME, "renameat2", fromfd, from, tofd, to) != 0) return -1;
  MISSING(resolve_renameat2());
  return real_renameat2(fromfd, from, tofd, to, flags);
}

EXPORT int link(const char *from, const char *to) {
  if (fault_path(OP_LINK, "link", AT_FDCWD, from, AT_FDCWD, to) != 0) return -1;
  MISSING(resolve_link());
  return real_link(from, to);
}

EXPORT int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
  if (fault_path(OP_LINK, "linkat", fromfd, from, tofd, to) != 0) return -1;
  MISSING(resolve_linkat());
  return real_linkat(fromfd, from, tofd, to, flags);
}

EXPORT int mkdir(const char *path, mode_t mode) {
  if (fault_path(OP_MKDIR, "mkdir", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_mkdir());
  return real_mkdir(path, mode);
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode) {
  if (fault_path(OP_MKDIR, "mkdirat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_mkdirat());
  return real_mkdirat(dirfd, path, mode);
}

EXPORT int unlink(const char *path) {
  if (fault_path(OP_UNLINK, "unlink", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_unlink());
  return real_unlink(path);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags) {
  if (fault_path(OP_UNLINK, "unlinkat", dirfd, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_unlinkat());
  return real_unlinkat(dirfd, path, flags);
}

EXPORT int rmdir(const char *path) {
  if (fault_path(OP_UNLINK, "rmdir", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_rmdir());
  return real_rmdir(path);
}

/* ------------------------------------------------------------------------------------------ */
/* sizes */

EXPORT int ftruncate(int fd, off_t size) {
  if (fault_fd(OP_TRUNCATE, "ftruncate", fd) != 0) return -1;
  MISSING(resolve_ftruncate());
  return real_ftruncate(fd, size);
}

EXPORT int ftruncate64(int fd, off64_t size) {
  if (fault_fd(OP_TRUNCATE, "ftruncate", fd) != 0) return -1;
  MISSING(resolve_ftruncate64());
  return real_ftruncate64(fd, size);
}

EXPORT int truncate(const char *path, off_t size) {
  if (fault_path(OP_TRUNCATE, "truncate", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_truncate());
  return real_truncate(path, size);
}

EXPORT int truncate64(const char *path, off64_t size) {
  if (fault_path(OP_TRUNCATE, "truncate", AT_FDCWD, path, AT_FDCWD, NULL) != 0) return -1;
  MISSING(resolve_truncate64());
  return real_truncate64(path, size);
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len) {
  if (fault_fd(OP_TRUNCATE, "fallocate", fd) != 0) return -1;
  MISSING(resolve_fallocate());
  return real_fallocate(fd, mode, off, len);
}

EXPORT int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  if (fault_fd(OP_TRUNCATE, "fallocate", fd) != 0) return -1;
  MISSING(resolve_fallocate64());
  return real_fallocate64(fd, mode, off, len);
}

/* posix_fallocate reports its error as the return value, not in errno. */
EXPORT int posix_fallocate(int fd, off_t off, off_t len) {
  if (fault_fd(OP_TRUNCATE, "posix_fallocate", fd) != 0) return errno;
  if (!resolve_posix_fallocate()) return ENOSYS;
  return real_posix_fallocate(fd, off, len);
}

EXPORT int posix_fallocate64(int fd, off64_t off, off64_t len) {
  if (fault_fd(OP_TRUNCATE, "posix_fallocate", fd) != 0) return errno;
  if (!resolve_posix_fallocate64()) return ENOSYS;
  return real_posix_fallocate64(fd, off, len);
}
