// bench/memory-return/trim_shim.c: an LD_PRELOAD shim for the measurement
// in measure.sh: calls malloc_trim(0) every second from a thread of its
// own, to see what glibc could give back if Herald trimmed on a timer
// (before src/server/memory_trim.* existed). Not part of any build.
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

static void* loop(void* arg) {
  (void)arg;
  for (;;) {
    sleep(1);
    malloc_trim(0);
  }
  return 0;
}

__attribute__((constructor)) static void start(void) {
  pthread_t t;
  pthread_create(&t, 0, loop, 0);
  pthread_detach(t);
}
