/* An LD_PRELOAD shim for the DNS tests: getaddrinfo() of a name starting with "slow."
 * sleeps $SLOW_DNS_SECONDS (default 3) and then fails as an unknown name would; every call
 * is counted in $SLOW_DNS_COUNT_FILE (one line per call) when that is set. Other names go
 * to the real getaddrinfo. Built by the test that uses it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char*, const char*, const struct addrinfo*, struct addrinfo**);

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  static getaddrinfo_fn real = NULL;
  if (real == NULL) real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  const char* count_file = getenv("SLOW_DNS_COUNT_FILE");
  if (count_file != NULL && node != NULL) {
    FILE* out = fopen(count_file, "a");
    if (out != NULL) {
      fprintf(out, "%s\n", node);
      fclose(out);
    }
  }
  if (node != NULL && strncmp(node, "slow.", 5) == 0) {
    const char* seconds = getenv("SLOW_DNS_SECONDS");
    sleep(seconds != NULL ? (unsigned)atoi(seconds) : 3);
    return EAI_NONAME;
  }
  return real(node, service, hints, res);
}
