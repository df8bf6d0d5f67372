// The C references of the benchmark, measured in the same run as the library.
//   reference cycle <lock> <n>        uncontended, the library's syscalls:
//                                     open+flock+fstat+lstat+unlock+close; ns per cycle
//   reference cycle-min <lock> <n>    uncontended, the least a flock(2) user does:
//                                     open+flock+close; ns per cycle
//   reference pidfile <lock> <n>      the pidfile protocol's floor: create-exclusive,
//                                     write the record, read it back, unlink; ns per cycle
//   reference counter <lock> <counter> <go> <ms> blocking|same
//       contended: from the start time written in <go> (CLOCK_MONOTONIC ms) for <ms>,
//       lock, increment a 16-digit counter with pread/pwrite, unlock; prints the count.
//       blocking: flock(LOCK_EX) waits in the kernel. same: the library's syscalls: a
//       non-blocking attempt (open, flock, fstat, lstat); when busy, an inotify watch of
//       the lock file, read-only retries, poll() until a writer's close or 250 ms.
//   reference handoff <lock> <stamp> <go> <n> <holdus> <pauseus>
//       n times: blocking lock, note the latency from the last release by another process
//       (the stamp: pid and CLOCK_MONOTONIC ms), hold, stamp, unlock, pause; prints
//       {"latencies":[...]} (ms).
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&t, NULL);
}

static int cycle(const char *lock, long n) {
  struct stat a, b;
  double start = now_ms();
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) return perror("lock"), 1;
    if (fstat(fd, &a) != 0 || lstat(lock, &b) != 0 || a.st_ino != b.st_ino) return 1;
    flock(fd, LOCK_UN);
    close(fd);
  }
  printf("%.1f\n", (now_ms() - start) * 1e6 / n);
  return 0;
}

static int cycle_min(const char *lock, long n) {
  double start = now_ms();
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) return perror("lock"), 1;
    close(fd);
  }
  printf("%.1f\n", (now_ms() - start) * 1e6 / n);
  return 0;
}

static int pidfile(const char *lock, long n) {
  char record[160], back[160];
  int length = snprintf(record, sizeof record,
                        "{\"pid\":%d,\"hostname\":\"bench\",\"startToken\":\"1@boot\","
                        "\"acquiredAt\":\"2026-01-01T00:00:00.000Z\",\"token\":"
                        "\"0123456789abcdef0123456789abcdef\"}\n",
                        getpid());
  double start = now_ms();
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return perror("create"), 1;
    if (write(fd, record, length) != length) return perror("write"), 1;
    if (pread(fd, back, sizeof back, 0) != length) return perror("read"), 1;
    unlink(lock);
    close(fd);
  }
  printf("%.1f\n", (now_ms() - start) * 1e6 / n);
  return 0;
}

/** Waits for the parent's start time in <go>; returns it. */
static double start_time(const char *go) {
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    FILE *f = fopen(go, "r");
    double at;
    if (f != NULL && fscanf(f, "%lf", &at) == 1) {
      fclose(f);
      while (now_ms() < at) sleep_us(100);
      return at;
    }
    if (f != NULL) fclose(f);
    sleep_us(500);
  }
}

static void increment(int counter) {
  char buf[24];
  ssize_t got = pread(counter, buf, 16, 0);
  buf[got > 0 ? got : 0] = 0;
  snprintf(buf, sizeof buf, "%016ld", atol(buf) + 1);
  pwrite(counter, buf, 16, 0);
}

/** One non-blocking attempt as the library makes it: the descriptor, or -1 when busy. */
static int attempt(const char *lock, int flags) {
  struct stat a, b;
  for (;;) {
    int fd = open(lock, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      return -1;
    }
    if (fstat(fd, &a) == 0 && lstat(lock, &b) == 0 && a.st_ino == b.st_ino) return fd;
    close(fd); // replaced meanwhile: again
  }
}

static int counter(const char *lock, const char *path, const char *go, double ms, int same) {
  int c = open(path, O_RDWR);
  if (c < 0) return perror("counter"), 1;
  int watch = same ? inotify_init1(IN_NONBLOCK | IN_CLOEXEC) : -1;
  char events[4096];
  double end = start_time(go) + ms;
  long count = 0;
  while (now_ms() < end) {
    int fd, announcer = -1;
    if (!same) {
      fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0 || flock(fd, LOCK_EX) != 0) return perror("lock"), 1;
    } else if ((fd = attempt(lock, O_RDWR)) < 0) {
      int delay = 1;
      inotify_add_watch(watch, lock, IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
      while ((fd = attempt(lock, O_RDONLY)) < 0) {
        struct pollfd p = {watch, POLLIN, 0};
        if (poll(&p, 1, delay) > 0) {
          while (read(watch, events, sizeof events) > 0) {}
          delay = 1;
        } else if ((delay *= 2) > 250) {
          delay = 250;
        }
      }
      announcer = open(lock, O_RDWR | O_CLOEXEC);
    }
    increment(c);
    flock(fd, LOCK_UN);
    close(fd);
    if (announcer >= 0) close(announcer);
    count++;
  }
  printf("{\"count\":%ld}\n", count);
  return 0;
}

static int handoff(const char *lock, const char *stamp, const char *go, long n, long hold_us,
                   long pause_us) {
  start_time(go);
  printf("{\"latencies\":[");
  int first = 1;
  for (long i = 0; i < n; i++) {
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) return perror("lock"), 1;
    double got = now_ms();
    FILE *f = fopen(stamp, "r");
    long pid;
    double released;
    if (f != NULL) {
      if (fscanf(f, "%ld %lf", &pid, &released) == 2 && pid != getpid()) {
        printf("%s%.4f", first ? "" : ",", got - released);
        first = 0;
      }
      fclose(f);
    }
    sleep_us(hold_us);
    f = fopen(stamp, "w");
    fprintf(f, "%d %.4f\n", getpid(), now_ms());
    fclose(f);
    flock(fd, LOCK_UN);
    close(fd);
    sleep_us(pause_us);
  }
  printf("]}\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "cycle") == 0) return cycle(argv[2], atol(argv[3]));
  if (argc == 4 && strcmp(argv[1], "cycle-min") == 0) return cycle_min(argv[2], atol(argv[3]));
  if (argc == 4 && strcmp(argv[1], "pidfile") == 0) return pidfile(argv[2], atol(argv[3]));
  if (argc == 7 && strcmp(argv[1], "counter") == 0) {
    return counter(argv[2], argv[3], argv[4], atof(argv[5]), strcmp(argv[6], "same") == 0);
  }
  if (argc == 8 && strcmp(argv[1], "handoff") == 0) {
    return handoff(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]), atol(argv[7]));
  }
  fprintf(stderr, "usage: see the comment at the top of reference.c\n");
  return 64;
}
