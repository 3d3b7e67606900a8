// Counts heap allocations by replacing the global operator new/delete. Include it in exactly
// one source file of a benchmark program (the replacements are program-wide definitions);
// read g_news before and after the work measured.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
std::atomic<uint64_t> g_news{0};
}

// noinline: once inlined, GCC 12 at -O3 pairs the malloc inside operator new with the free
// inside operator delete and reports a false -Wmismatched-new-delete.
#define BENCH_NOINLINE __attribute__((noinline))

BENCH_NOINLINE void *operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
BENCH_NOINLINE void *operator new[](std::size_t n) {
  return ::operator new(n);
}
BENCH_NOINLINE void operator delete(void *p) noexcept {
  std::free(p);
}
BENCH_NOINLINE void operator delete[](void *p) noexcept {
  std::free(p);
}
BENCH_NOINLINE void operator delete(void *p, std::size_t) noexcept {
  std::free(p);
}
BENCH_NOINLINE void operator delete[](void *p, std::size_t) noexcept {
  std::free(p);
}
