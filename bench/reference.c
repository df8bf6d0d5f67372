// The C reference of the benchmark: the same syscalls the library makes.
//   reference cycle <lock> <n>                 uncontended: open+flock+fstat+lstat+unlock+close
//   reference counter <lock> <counter> <n>     contended: blocking flock, read, write, release
// Prints nanoseconds per operation (cycle) or total seconds (counter).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int cycle(const char *lock, long n) {
  struct stat a, b;
  double start = now();
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) return perror("lock"), 1;
    if (fstat(fd, &a) != 0 || lstat(lock, &b) != 0 || a.st_ino != b.st_ino) return 1;
    flock(fd, LOCK_UN);
    close(fd);
  }
  printf("%.1f\n", (now() - start) * 1e9 / n);
  return 0;
}

static int counter(const char *lock, const char *path, long n) {
  char buf[17];
  int c = open(path, O_RDWR);
  if (c < 0) return perror("counter"), 1;
  double start = now();
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) return perror("lock"), 1;
    // A fixed-width counter read and written in place, as the JavaScript workers do.
    ssize_t got = pread(c, buf, 16, 0);
    buf[got > 0 ? got : 0] = 0;
    snprintf(buf, sizeof buf, "%016ld", atol(buf) + 1);
    pwrite(c, buf, 16, 0);
    flock(fd, LOCK_UN);
    close(fd);
  }
  close(c);
  printf("%.6f\n", now() - start);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "cycle") == 0) return cycle(argv[2], atol(argv[3]));
  if (argc == 5 && strcmp(argv[1], "counter") == 0) return counter(argv[2], argv[3], atol(argv[4]));
  fprintf(stderr, "usage: reference cycle <lock> <n> | counter <lock> <counter> <n>\n");
  return 64;
}
