// output.c — every file the runtime writes under a name the user gave
// (checkpoints, -o, --plot, --log, --trace, --dump-random): written to a
// fresh temporary beside it, created with O_EXCL, then renamed over it, so
// the name holds the old file or the whole new one, never a part of one; and
// SIGINT/SIGTERM, which remove the temporaries being written before the
// program exits (docs/robustness.md).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define TMP_MARK ".aec-tmp-"
enum { NAME_IN_TMP = 100 };  // bytes of the file's name a temporary's name keeps (NAME_MAX is 255)

struct aert_output {
  char *path;    // as the user gave it, for messages
  char *target;  // what the temporary is renamed to: path, or the file a symbolic link at path names
  char *tmp;
  const char *what;
  FILE *f;
  int slot;  // in live_tmp, or -1
};

// ------------------------------------------------ the temporaries in flight
// For the signal handler, which may only unlink and write: fixed buffers.
enum { MAX_LIVE = 8 };
static char live_tmp[MAX_LIVE][PATH_MAX], live_name[MAX_LIVE][PATH_MAX];
static volatile sig_atomic_t live_used[MAX_LIVE];
static volatile sig_atomic_t stop_signal, defer_signals;
static char notes[2][PATH_MAX + 256];  // aert_signal_note's text: one written while the other is shown
static volatile sig_atomic_t note_shown = -1;

static int live_add(const char *tmp, const char *name) {
  if (strlen(tmp) >= PATH_MAX || strlen(name) >= PATH_MAX) return -1;
  for (int i = 0; i < MAX_LIVE; i++)
    if (!live_used[i]) {
      memcpy(live_tmp[i], tmp, strlen(tmp) + 1);
      memcpy(live_name[i], name, strlen(name) + 1);
      atomic_signal_fence(memory_order_seq_cst);  // the names are whole before the handler may read them
      live_used[i] = 1;
      return i;
    }
  return -1;
}

static void say(const char *text) {
  ssize_t ignored = write(2, text, strlen(text));
  (void)ignored;
}

static void on_signal(int sig) {
  if (defer_signals && !stop_signal) {
    stop_signal = sig;
    return;
  }
  say(aert_program());
  say(sig == SIGINT ? ": interrupted by SIGINT" : ": interrupted by SIGTERM");
  for (int i = 0; i < MAX_LIVE; i++)
    if (live_used[i]) {
      unlink(live_tmp[i]);
      say("; ");
      say(live_name[i]);
      say(" was not replaced");
    }
  say("; every file already in place is whole");
  if (note_shown >= 0) say("; "), say(notes[note_shown]);
  say("\n");
  _exit(128 + sig);
}

// A signal the parent left ignored (nohup, a shell's background job) stays ignored.
void aert_catch_signals(bool defer) {
  defer_signals = defer;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int signals[] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++)
    if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(signals[i], &sa, NULL);
}

int aert_stop_signal(void) { return stop_signal; }

void aert_signal_note(const char *text) {
  int next = note_shown == 0 ? 1 : 0;
  snprintf(notes[next], sizeof notes[next], "%s", text);
  atomic_signal_fence(memory_order_seq_cst);
  note_shown = next;
}

const char *aert_signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

// ------------------------------------------------------------- the target
static const char *kind_of(mode_t mode) {
  return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
       : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "not a regular file";
}

// The file a write of `path` replaces: path itself (absent or a regular
// file), or the regular file a symbolic link at path names, which is then
// replaced and the link kept. A directory, a device, a FIFO, a socket or a
// link to one, and a dangling link are refused: NULL after a message.
static char *resolve_target(const char *path, const char *what, mode_t *mode) {
  struct stat st;
  size_t length = strlen(path);
  if (length == 0 || path[length - 1] == '/') {
    aert_error("%s: cannot write %s: the name is a directory's", path, what);
    return NULL;
  }
  if (lstat(path, &st) != 0) {
    if (errno != ENOENT) {
      aert_error("%s: cannot create %s: %s", path, what, strerror(errno));
      return NULL;
    }
    mode_t mask = umask(0);
    umask(mask);
    *mode = 0666 & ~mask;
    return strdup(path);
  }
  if (S_ISLNK(st.st_mode)) {
    struct stat to;
    if (stat(path, &to) != 0) {
      aert_error("%s: cannot write %s: it is a symbolic link to a file that does not exist (%s); "
                 "remove the link or name another file", path, what, strerror(errno));
      return NULL;
    }
    if (!S_ISREG(to.st_mode)) {
      aert_error("%s: cannot write %s: it is a symbolic link to %s, and only a regular file is replaced", path, what,
                 kind_of(to.st_mode));
      return NULL;
    }
    *mode = to.st_mode & 07777;
    char *real = realpath(path, NULL);
    if (!real) aert_error("%s: cannot write %s: %s", path, what, strerror(errno));
    return real;
  }
  if (!S_ISREG(st.st_mode)) {
    aert_error("%s: cannot write %s: it is %s, and only a regular file is replaced", path, what, kind_of(st.st_mode));
    return NULL;
  }
  *mode = st.st_mode & 07777;
  return strdup(path);
}

// Whether process `pid` is gone: kill(pid, 0) fails with ESRCH, or it is a
// zombie whose parent has not reaped it yet (Linux's /proc says 'Z').
static bool process_gone(long pid) {
  if (kill((pid_t)pid, 0) != 0) return errno == ESRCH;
  char path[64], state = 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1) state = 0;  // a name with ')' reads no state: alive
  fclose(f);
  return state == 'Z';
}

// Removes the temporaries of `name` in `dir` that dead processes left: their
// names carry the writer's pid (process_gone).
static void remove_stale(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return;
  size_t n = strlen(prefix);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, n) != 0) continue;
    char *end = NULL;
    long pid = strtol(e->d_name + n, &end, 10);
    if (pid > 0 && end && *end == '-' && pid != (long)getpid() && process_gone(pid))
      unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

// "DIR/.NAME.aec-tmp-" for target DIR/NAME, NAME cut to NAME_IN_TMP bytes.
static char *temporary_prefix(const char *target, char **dir_out) {
  char *a = strdup(target), *b = strdup(target), *prefix = NULL;
  if (a && b) {
    const char *dir = dirname(a), *name = basename(b);
    int cut = (int)(strlen(name) < NAME_IN_TMP ? strlen(name) : NAME_IN_TMP);
    if (asprintf(&prefix, ".%.*s" TMP_MARK, cut, name) < 0) prefix = NULL;
    *dir_out = strdup(dir);
  }
  free(a), free(b);
  return prefix;
}

aert_output *aert_output_begin(const char *path, const char *what) {
  mode_t mode = 0644;
  char *target = resolve_target(path, what, &mode);
  if (!target) return NULL;
  aert_output *o = calloc(1, sizeof *o);
  char *dir = NULL, *prefix = temporary_prefix(target, &dir);
  if (o && prefix && dir && asprintf(&o->tmp, "%s/%s%ld-XXXXXX", dir, prefix, (long)getpid()) < 0) o->tmp = NULL;
  if (!o || !o->tmp || !(o->path = strdup(path))) {
    aert_error("%s: out of memory", path);
    if (o) free(o->tmp), free(o);
    free(prefix), free(dir), free(target);
    return NULL;
  }
  remove_stale(dir, prefix);
  free(prefix), free(dir);
  o->target = target, o->what = what;
  int fd = mkostemp(o->tmp, O_CLOEXEC);  // O_CREAT | O_EXCL: never a file or link already there
  if (fd < 0) {
    aert_error("%s: cannot create %s: %s", path, what, strerror(errno));
    free(o->tmp), free(o->path), free(o->target), free(o);
    return NULL;
  }
  o->slot = live_add(o->tmp, path);
  if (fchmod(fd, mode) != 0 || !(o->f = fdopen(fd, "wb"))) {
    aert_error("%s: cannot create %s: %s", path, what, strerror(errno));
    close(fd);
    aert_output_abandon(o);
    return NULL;
  }
  return o;
}

FILE *aert_output_stream(aert_output *o) { return o->f; }

static void output_free(aert_output *o) {
  if (o->slot >= 0) live_used[o->slot] = 0;
  free(o->path), free(o->target), free(o->tmp), free(o);
}

void aert_output_abandon(aert_output *o) {
  if (!o) return;
  if (o->f) fclose(o->f);
  unlink(o->tmp);
  output_free(o);
}

// Makes the rename durable; file systems that cannot fsync a directory are fine.
static void sync_directory(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(copy);
}

bool aert_output_commit(aert_output *o) {
  int error = ferror(o->f) ? (errno ? errno : EIO) : 0;
  if (!error && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)) error = errno;
  if (fclose(o->f) != 0 && !error) error = errno;
  o->f = NULL;
  if (!error && rename(o->tmp, o->target) != 0) error = errno;
  if (error) {
    aert_error("%s: cannot write %s: %s", o->path, o->what, strerror(error));
    aert_output_abandon(o);
    return false;
  }
  sync_directory(o->target);
  output_free(o);
  return true;
}

bool aert_output_check(const char *path, const char *what) {
  aert_output *o = aert_output_begin(path, what);
  bool ok = o != NULL;
  aert_output_abandon(o);
  return ok;
}

bool aert_output_write_all(const char *path, const char *what, const void *data, size_t size) {
  aert_output *o = aert_output_begin(path, what);
  if (!o) return false;
  if (size && fwrite(data, 1, size, o->f) != size) {
    aert_error("%s: cannot write %s: %s", path, what, strerror(errno ? errno : EIO));
    aert_output_abandon(o);
    return false;
  }
  return aert_output_commit(o);
}
