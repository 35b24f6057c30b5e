// input.c — opening a file the program reads (data, labels, a checkpoint, a
// CSV of points): only a regular file, symbolic links followed, is read. A
// directory, a device (/dev/zero would never end), a FIFO or a socket gets
// one message naming the file; a FIFO is opened without blocking, so a pipe
// with no writer does not hang the program.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

static const char *kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Why open(path) failed, in words: a dangling link and a loop of links said as such.
static void report_open_error(const char *path, const char *what, int error) {
  struct stat st;
  if (error == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    aert_error("%s: cannot open the %s: it is a symbolic link to '%s', which does not exist", path, what, target);
  } else if (error == ELOOP) {
    aert_error("%s: cannot open the %s: a loop of symbolic links", path, what);
  } else if (error == ENOENT && strcmp(what, "data file") == 0) {
    aert_error("%s: no such file", path);
  } else {
    aert_error("%s: cannot open the %s: %s", path, what, strerror(error));
  }
}

int aert_open_input(const char *path, const char *what, uint64_t *size) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    report_open_error(path, what, errno);
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    aert_error("%s: cannot read the %s: %s", path, what, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    aert_error("%s: is %s, not a %s (only a regular file is read)", path, kind_of(st.st_mode), what);
    close(fd);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (size) *size = (uint64_t)st.st_size;
  return fd;
}

FILE *aert_fopen_input(const char *path, const char *what, uint64_t *size) {
  int fd = aert_open_input(path, what, size);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    aert_error("%s: cannot open the %s: %s", path, what, strerror(errno));
    close(fd);
  }
  return f;
}
