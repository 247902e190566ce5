// cpp/src/shared_heap.cpp
// SharedHeap: one arena block per large allocation; a send turns the sender's mapping private.
#include "multilane/shared_heap.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "multilane/platform.hpp"

namespace multilane {

namespace {

constexpr std::uintptr_t kPage = 4096;

void* system_malloc(void*, std::size_t size) { return std::malloc(size); }
void* system_calloc(void*, std::size_t count, std::size_t size) { return std::calloc(count, size); }
void* system_realloc(void*, void* p, std::size_t size) { return std::realloc(p, size); }
void system_free(void*, void* p, std::size_t) { std::free(p); }

SharedHeap& heap_of(void* ctx) { return *static_cast<SharedHeap*>(ctx); }

}  // namespace

CAllocator system_allocator() noexcept { return {nullptr, system_malloc, system_calloc, system_realloc, system_free}; }

SharedHeap::SharedHeap(Arena& arena, Options options, CAllocator fallback)
    : arena_(arena), options_(options), fallback_(fallback) {
  options_.min_bytes = std::max<std::size_t>(options_.min_bytes, 1);
  watch_forks();
}

SharedHeap::~SharedHeap() { stop_watching_forks(); }

CAllocator SharedHeap::allocator() noexcept {
  CAllocator a;
  a.ctx = this;
  a.malloc = [](void* ctx, std::size_t size) -> void* {
    SharedHeap& heap = heap_of(ctx);
    if (void* p = heap.allocate(size, false)) return p;
    return heap.fallback_.malloc(heap.fallback_.ctx, size);
  };
  a.calloc = [](void* ctx, std::size_t count, std::size_t size) -> void* {
    SharedHeap& heap = heap_of(ctx);
    std::size_t total = 0;
    if (__builtin_mul_overflow(count, size, &total)) return nullptr;  // as calloc does
    if (void* p = heap.allocate(total, true)) return p;
    return heap.fallback_.calloc(heap.fallback_.ctx, count, size);
  };
  a.realloc = [](void* ctx, void* p, std::size_t size) -> void* { return heap_of(ctx).reallocate(p, size); };
  a.free = [](void* ctx, void* p, std::size_t size) {
    SharedHeap& heap = heap_of(ctx);
    if (!heap.release(p)) heap.fallback_.free(heap.fallback_.ctx, p, size);
  };
  return a;
}

void* SharedHeap::allocate(std::size_t size, bool zeroed) noexcept {
  if (size < options_.min_bytes) return nullptr;
  if (live_count_.load(std::memory_order_relaxed) >= options_.max_blocks) {
    std::lock_guard lock(mu_);
    ++counts_.declined;
    return nullptr;
  }
  Allocation a;
  try {
    a.block = arena_.allocate(size, zeroed);  // outside the lock: a new block is a memfd
    a.data = a.block.writable(0);
    a.file_offset = a.block.entries()[0].offset;
  } catch (...) {  // no memfd or no mapping to be had: the fallback may still have memory
    std::lock_guard lock(mu_);
    ++counts_.declined;
    return nullptr;
  }
  a.size = size;
  a.span = a.block.size() - a.file_offset;
  a.owner = platform::current_pid();
  std::byte* data = a.data;
  std::lock_guard lock(mu_);
  live_.emplace(reinterpret_cast<std::uintptr_t>(data), std::move(a));
  live_count_.fetch_add(1, std::memory_order_relaxed);
  live_bytes_ += size;
  ++counts_.allocations;
  return data;
}

bool SharedHeap::owns(const void* p) const noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  if (at % kPage != 0 || live_count_.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard lock(mu_);
  return live_.contains(at);
}

bool SharedHeap::release(void* p) noexcept {
  // Cheap for the fallback's pointers: ours are page-aligned, malloc's almost never are.
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  if (at % kPage != 0 || live_count_.load(std::memory_order_relaxed) == 0) return false;
  Allocation a;
  {
    std::lock_guard lock(mu_);
    const auto it = live_.find(at);
    if (it == live_.end()) return false;
    a = std::move(it->second);
    live_.erase(it);
    live_count_.fetch_sub(1, std::memory_order_relaxed);
    live_bytes_ -= a.size;
  }
  // Dropping `a.block` gives the block back (or, if inherited, closes it). A snapshot's
  // range stays private until the arena hands the block out again (`note_private`).
  return true;
}

void* SharedHeap::reallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr || !owns(p)) {
    if (p == nullptr) {
      if (void* q = allocate(size, false)) return q;
    }
    return fallback_.realloc(fallback_.ctx, p, size);
  }
  std::size_t old_size = 0;
  {
    std::lock_guard lock(mu_);
    old_size = live_.at(reinterpret_cast<std::uintptr_t>(p)).size;
  }
  void* q = allocate(size, false);
  if (q == nullptr) q = fallback_.malloc(fallback_.ctx, size);
  if (q == nullptr) return nullptr;  // realloc's contract: the old memory is untouched
  std::memcpy(q, p, std::min(old_size, size));
  release(p);
  return q;
}

std::optional<SharedHeap::Share> SharedHeap::share(const void* p, std::size_t size) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  if (live_count_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  Share out;
  std::byte* check = nullptr;
  std::size_t check_bytes = 0;
  {
    std::lock_guard lock(mu_);
    auto it = live_.upper_bound(at);
    if (it == live_.begin()) return std::nullopt;
    --it;
    Allocation& a = it->second;
    if (at + size > it->first + a.size || size > a.size) return std::nullopt;
    if (a.owner != platform::current_pid()) return std::nullopt;
    out.block = a.block;
    out.offset = at - it->first;
    if (!a.snapshot) {
      // Under the lock: two sends of one buffer must not both remap, or the second would
      // drop what was written between them.
      snapshot_locked(a);
      ++counts_.snapshots;
      ++counts_.shares;
      return out;
    }
    const std::uintptr_t first = at / kPage * kPage;
    check = reinterpret_cast<std::byte*>(first);
    check_bytes = (at + size + kPage - 1) / kPage * kPage - first;
  }
  // Outside the lock (2 ms per 256 MB of page table to read). The caller holds the buffer,
  // so the allocation cannot be freed meanwhile.
  const bool written = platform::has_private_pages(check, check_bytes);
  std::lock_guard lock(mu_);
  if (written) {
    ++counts_.refused;
    return std::nullopt;
  }
  ++counts_.shares;
  return out;
}

void SharedHeap::snapshot_locked(Allocation& a) {
  platform::remap(a.data, a.span, a.block.fd(), a.file_offset, /*shared=*/false);
  a.block.note_private(a.file_offset, a.span);
  a.snapshot = true;
}

SharedHeap::Stats SharedHeap::stats() const {
  std::lock_guard lock(mu_);
  Stats s = counts_;
  s.live_blocks = live_.size();
  s.live_bytes = live_bytes_;
  return s;
}

void SharedHeap::before_fork() noexcept {
  mu_.lock();
  const pid_t self = platform::current_pid();
  for (auto& [at, a] : live_) {
    if (a.snapshot || a.owner != self) continue;
    try {
      snapshot_locked(a);
    } catch (...) {  // out of mappings: parent and child would share this one's pages
    }
  }
  arena_.lock_for_fork();
}

void SharedHeap::after_fork(bool /*in_child*/) noexcept {
  arena_.unlock_after_fork();
  mu_.unlock();
}

}  // namespace multilane
