// LeakSanitizer's built-in suppressions for the unit-test binary (read at exit).
// gRPC 1.51 resolves DNS names with c-ares, and a process that resolved one leaves c-ares'
// copies of the name behind at exit (20 bytes; the etcd tests that name members by DNS).
// Debian's libcares has no frame pointers, so only its library can name the report.
extern "C" const char* __lsan_default_suppressions() { return "leak:libcares.so\n"; }
