// cpp/include/multilane/shared_heap.hpp
// SharedHeap: large allocations made in shared memory, so that sending one costs no copy.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "multilane/attachment.hpp"
#include "multilane/fork_hooks.hpp"

namespace multilane {

/// A C allocator in the shape of NumPy's PyDataMemAllocator (NEP 49): what SharedHeap
/// offers, and what it hands the requests it does not take to.
struct CAllocator {
  void* ctx = nullptr;
  void* (*malloc)(void* ctx, std::size_t size) = nullptr;
  void* (*calloc)(void* ctx, std::size_t count, std::size_t size) = nullptr;
  void* (*realloc)(void* ctx, void* ptr, std::size_t size) = nullptr;
  void (*free)(void* ctx, void* ptr, std::size_t size) = nullptr;
};

/// The C library's malloc, calloc, realloc and free as a CAllocator.
CAllocator system_allocator() noexcept;

/// Large buffers allocated in shared memory, so that a buffer sent to another process
/// needs no copy at all: multilane's NumPy allocator is built on it.
///
/// Each allocation of `min_bytes` or more is a block of an Arena holding one buffer
/// (`Arena::allocate`), mapped shared here; smaller requests, and those the heap cannot
/// take (over `max_blocks`, no memfd to be had), go to the fallback allocator.
///
/// `share` hands the block holding a buffer over for sending. The first time, this
/// process's mapping of the allocation is turned private, copy-on-write, over the same
/// pages (a remap: nothing is copied), so the receiver maps the block as it is and nothing
/// the sender writes afterwards can reach it: a write here copies the page it touches.
/// A buffer shared and not written since is shared again as it is; once any of its pages
/// was written, `share` says no and the caller copies it like any other buffer. A freed
/// allocation's block goes back to the arena, which reuses it only once every receiver has
/// let go (and maps a snapshot's range shared again first, faulting it in at once).
///
/// Fork: just before a fork every allocation is made private, as on a first `share`, so
/// parent and child each keep a copy-on-write snapshot, as they would of ordinary memory
/// (ForkHooks; multilane's own spawns use _Fork and skip this). A child holds the
/// allocations it inherited inert: never shared, only unmapped when freed.
///
/// Thread-safe. A heap must outlive its allocations (the process's heap is never destroyed).
class SharedHeap final : private ForkHooks {
 public:
  struct Options {
    std::size_t min_bytes = std::size_t{1} << 20;
    std::size_t max_blocks = 1024;  // each live allocation holds a descriptor
  };
  SharedHeap(Arena& arena, Options options, CAllocator fallback = system_allocator());
  ~SharedHeap();
  SharedHeap(const SharedHeap&) = delete;
  SharedHeap& operator=(const SharedHeap&) = delete;

  /// This heap as a CAllocator (its ctx is the heap): large requests here, the rest to the
  /// fallback. `free` and `realloc` accept pointers of either.
  [[nodiscard]] CAllocator allocator() noexcept;
  /// Replaces the fallback; only before the first request reaches it.
  void set_fallback(CAllocator fallback) noexcept { fallback_ = fallback; }

  /// Page-aligned memory for `size` bytes (zero if `zeroed`), or nullptr if the heap does
  /// not take the request: the caller then uses another allocator.
  [[nodiscard]] void* allocate(std::size_t size, bool zeroed) noexcept;
  /// Frees an allocation of this heap; false (and nothing done) if `p` is not one.
  bool release(void* p) noexcept;
  [[nodiscard]] bool owns(const void* p) const noexcept;
  /// No allocation alive (a quick look, without the lock).
  [[nodiscard]] bool empty() const noexcept { return live_count_.load(std::memory_order_relaxed) == 0; }

  /// The block holding [p, p + size) and the offset of `p` in its buffer, ready to send;
  /// nullopt if that range is not in an allocation of this heap, or was written since the
  /// allocation was last shared, or the allocation was inherited through a fork.
  struct Share {
    Attachment block;
    std::size_t offset = 0;
  };
  [[nodiscard]] std::optional<Share> share(const void* p, std::size_t size);

  struct Stats {
    std::size_t live_blocks = 0;  // allocations alive now
    std::size_t live_bytes = 0;
    std::size_t allocations = 0;  // requests taken, ever
    std::size_t declined = 0;     // large requests left to the fallback (max_blocks, no memfd)
    std::size_t shares = 0;       // buffers handed over without a copy
    std::size_t snapshots = 0;    // of them, first shares (a mapping turned private)
    std::size_t refused = 0;      // shares refused: written since the last one
  };
  [[nodiscard]] Stats stats() const;

 private:
  struct Allocation {
    Attachment block;
    std::byte* data = nullptr;
    std::size_t size = 0;         // as requested
    std::size_t span = 0;         // mapped: whole pages
    std::size_t file_offset = 0;  // of the buffer in the block's memfd
    bool snapshot = false;        // mapped private since its first share (or a fork)
    pid_t owner = 0;
  };
  // Before a fork: every allocation made private, the heap's and the arena's locks held.
  void before_fork() noexcept override;
  void after_fork(bool in_child) noexcept override;
  void* reallocate(void* p, std::size_t size) noexcept;
  /// Turns the allocation's mapping private (copy-on-write) over its block. Holds mu_.
  void snapshot_locked(Allocation& a);

  Arena& arena_;
  Options options_;
  CAllocator fallback_;
  mutable std::mutex mu_;
  std::map<std::uintptr_t, Allocation> live_;  // by data address
  std::atomic<std::size_t> live_count_{0};     // read without the lock by `release`
  std::size_t live_bytes_ = 0;
  Stats counts_;
};

}  // namespace multilane
