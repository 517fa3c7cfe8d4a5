// A stand-in agent for the injector's tests: pyrewind_agent_start("[slow:|hang:|fail:]FILE")
// appends "start N tid T" to FILE (N counts the calls into this one loaded copy, so a reused
// handle shows as N growing) and returns 0, or 42 with "fail:". "slow:" holds the calling
// thread 200 ms (for signals to arrive meanwhile), "hang:" 5 s (longer than any test timeout).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int g_calls;

static void sleep_ms(long ms) {
  struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0) {
  }
}

__attribute__((visibility("default"))) int pyrewind_agent_start(const char* argument) {
  int result = 0;
  if (strncmp(argument, "slow:", 5) == 0) {
    sleep_ms(200);
    argument += 5;
  } else if (strncmp(argument, "hang:", 5) == 0) {
    sleep_ms(5000);
    argument += 5;
  } else if (strncmp(argument, "fail:", 5) == 0) {
    result = 42;
    argument += 5;
  }
  const int fd = open(argument, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return 7;
  dprintf(fd, "start %d tid %ld\n", ++g_calls, (long)syscall(SYS_gettid));
  close(fd);
  return result;
}
