// A program for the injector's tests to attach to: `attach_test_target MODE`. It prints
// "ready" once set up, then does what MODE says and prints one line that tells the test
// whether the injection disturbed it (and exits 0 if it did not).
//   busy     computes (integer and SSE) until SIGUSR2, then computes the same again: the two
//            checksums agree only if the registers were restored exactly
//   malloc   allocates and frees until SIGUSR2 (the injector must wait for a safe moment)
//   sleep    nanosleep(1 s): must sleep the whole second, without EINTR
//   read     read() on stdin: must restart and get the test's data
//   epoll    epoll_wait() on stdin, retrying on EINTR like Python (PEP 475), then reads
//   threads  4 threads compute until a line arrives on stdin; each checks its checksum
//   signals  counts SIGUSR1 and SIGUSR2 until a line arrives on stdin
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_usr1, g_usr2;

static void on_usr2_stop(int sig) { (void)sig; g_stop = 1; }
static void on_usr1_count(int sig) { (void)sig; g_usr1++; }
static void on_usr2_count(int sig) { (void)sig; g_usr2++; }

static void on(int sig, void (*handler)(int)) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  sigaction(sig, &action, NULL);
}

// `limit` iterations, or until g_stop when limit is 0; `*count` says how many ran.
__attribute__((noinline)) static uint64_t compute(uint64_t limit, volatile int* stop, uint64_t* count) {
  uint64_t h = 1469598103934665603ull, i = 0;
  double x = 1.0, y = 0.5;
  for (; limit ? i < limit : !*stop; ++i) {
    x = x * 1.0000001 + sqrt((double)(i & 1023)) * 1e-6;
    y = y * 0.999 + x / (1.0 + (double)(i % 7));
    h = (h ^ i ^ (uint64_t)(y * 1e6)) * 1099511628211ull;
  }
  *count = i;
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  return h ^ bits;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// One read() of stdin: its length, or -errno.
static int wait_line(char* line, size_t size) {
  const ssize_t n = read(0, line, size - 1);
  if (n < 0) return -errno;
  line[n] = '\0';
  line[strcspn(line, "\n")] = '\0';
  return (int)n;
}

static volatile int g_threads_stop;
static int g_threads_started;
static void* worker(void* arg) {
  __atomic_add_fetch(&g_threads_started, 1, __ATOMIC_SEQ_CST);
  uint64_t count = 0;
  const uint64_t first = compute(0, &g_threads_stop, &count);
  uint64_t again_count = 0;
  const uint64_t again = compute(count, &g_threads_stop, &again_count);
  *(int*)arg = first == again;
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  setvbuf(stdout, NULL, _IONBF, 0);
  char line[256];
  if (strcmp(mode, "busy") == 0) {
    on(SIGUSR2, on_usr2_stop);
    printf("ready\n");
    uint64_t count = 0, again_count = 0;
    const uint64_t first = compute(0, (volatile int*)&g_stop, &count);
    const uint64_t again = compute(count, (volatile int*)&g_stop, &again_count);
    printf("busy %d %llu\n", first == again, (unsigned long long)count);
    return first == again ? 0 : 1;
  }
  if (strcmp(mode, "malloc") == 0) {
    on(SIGUSR2, on_usr2_stop);
    printf("ready\n");
    unsigned long rounds = 0;
    unsigned char* keep[64] = {0};
    uint64_t sum = 0;
    for (unsigned seed = 1; !g_stop; ++rounds) {
      seed = seed * 1103515245u + 12345u;
      const unsigned slot = seed % 64, size = 16 + seed % 4000;
      free(keep[slot]);
      keep[slot] = malloc(size);
      for (unsigned i = 0; i < size; i += 8) keep[slot][i] = (unsigned char)(i ^ seed);  // work outside malloc
      for (unsigned i = 0; i < size; i += 8) sum += keep[slot][i];
    }
    for (int i = 0; i < 64; ++i) free(keep[i]);
    printf("malloc 1 %lu %llu\n", rounds, (unsigned long long)sum);
    return 0;
  }
  if (strcmp(mode, "sleep") == 0) {
    printf("ready\n");
    const double start = now_ms();
    struct timespec second = {1, 0};
    const int rc = nanosleep(&second, NULL);
    const double slept = now_ms() - start;
    const int ok = rc == 0 && slept >= 999.0;
    printf("sleep %d %.1f\n", ok, slept);
    return ok ? 0 : 1;
  }
  if (strcmp(mode, "read") == 0) {
    printf("ready\n");
    const int n = wait_line(line, sizeof line);
    printf("read %d %s\n", n > 0, n > 0 ? line : strerror(-n));
    return n > 0 ? 0 : 1;
  }
  if (strcmp(mode, "epoll") == 0) {
    const int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data = {.fd = 0}};
    epoll_ctl(epoll, EPOLL_CTL_ADD, 0, &event);
    printf("ready\n");
    int interrupted = 0, n;
    while ((n = epoll_wait(epoll, &event, 1, -1)) < 0 && errno == EINTR) interrupted++;
    const int got = n == 1 ? wait_line(line, sizeof line) : -1;
    printf("epoll %d %s eintr=%d\n", got > 0, got > 0 ? line : "-", interrupted);
    return got > 0 ? 0 : 1;
  }
  if (strcmp(mode, "threads") == 0) {
    pthread_t threads[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; ++i) pthread_create(&threads[i], NULL, worker, &ok[i]);
    while (__atomic_load_n(&g_threads_started, __ATOMIC_SEQ_CST) < 4) usleep(1000);
    printf("ready\n");
    const int n = wait_line(line, sizeof line);
    g_threads_stop = 1;
    int all = n > 0;
    for (int i = 0; i < 4; ++i) {
      pthread_join(threads[i], NULL);
      all = all && ok[i];
    }
    printf("threads %d\n", all);
    return all ? 0 : 1;
  }
  if (strcmp(mode, "signals") == 0) {
    on(SIGUSR1, on_usr1_count);
    on(SIGUSR2, on_usr2_count);
    printf("ready\n");
    int n;
    while ((n = wait_line(line, sizeof line)) == -EINTR) {
    }
    printf("signals %d usr1=%d usr2=%d\n", n > 0 && g_usr1 > 0 && g_usr2 > 0, (int)g_usr1, (int)g_usr2);
    return n > 0 ? 0 : 1;
  }
  fprintf(stderr, "usage: %s busy|malloc|sleep|read|epoll|threads|signals\n", argv[0]);
  return 2;
}
