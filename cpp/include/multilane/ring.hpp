// cpp/include/multilane/ring.hpp
// Ring: a single-producer single-consumer ring of length-prefixed frames in shared memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "multilane/doorbell.hpp"

namespace multilane {

/// A frame larger than the ring could ever hold. Raised at once: waiting would never help.
class FrameTooLarge : public std::length_error {
 public:
  FrameTooLarge(std::size_t frame, std::size_t max_frame);
};

/// The ring's memory holds something that is not a valid frame (corruption, or a peer that
/// wrote garbage). The ring cannot be trusted any more.
class CorruptFrame : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The shared part of a ring; the data bytes follow it.
/// Each index sits on its own cache line so producer and consumer never share one.
struct RingHeader {
  static constexpr std::uint32_t kMagic = 0x4d4c5247;  // "MLRG"
  alignas(64) std::atomic<std::uint64_t> head{0};       // written by the consumer only
  alignas(64) std::atomic<std::uint64_t> tail{0};       // written by the producer only
  alignas(64) std::uint64_t capacity = 0;               // written once at creation
  std::uint32_t magic = 0;
};
static_assert(sizeof(RingHeader) == 192);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// One side's handle on a ring: either the producer (`push`) or the consumer (`pop`), never
/// both from two threads at once. Handles are cheap; each process builds its own over the
/// shared memory.
///
/// A frame is stored as an 8-byte prefix (length, and its complement as a check) followed
/// by the payload padded to 8 bytes; head and tail are byte counters that only grow, so
/// `tail - head` is the used space and the slot is `counter & (capacity - 1)`. Payloads
/// wrap around the end of the buffer in two copies. Algorithm after Lamport's SPSC queue,
/// with the cached opposite index of rigtorp/SPSCQueue.
///
/// Memory ordering: the producer copies the payload, then stores `tail` with release; the
/// consumer loads `tail` with acquire before reading the payload (and symmetrically for
/// `head`, which frees space). Doorbells are rung after each publish.
class Ring {
 public:
  static constexpr std::size_t kPrefix = 8;

  /// Bytes of shared memory needed for a ring of `capacity` data bytes (a power of two >= 64).
  static std::size_t bytes_for(std::size_t capacity);
  /// Initialises a new ring in `mem`. `readable` is rung after a push, `writable` after a pop.
  static Ring create(void* mem, std::size_t capacity, Doorbell* readable, Doorbell* writable);
  /// Opens a ring that `create` initialised (maybe in another process).
  static Ring attach(void* mem, std::size_t mem_size, Doorbell* readable, Doorbell* writable);

  Ring() = default;

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// The largest payload a frame can carry.
  [[nodiscard]] std::size_t max_frame() const noexcept { return capacity_ - kPrefix; }
  /// Bytes a payload of `n` bytes occupies in the ring.
  [[nodiscard]] static std::size_t footprint(std::size_t n) noexcept { return kPrefix + ((n + 7) & ~std::size_t{7}); }

  /// Appends one frame made of `a` followed by `b` if it fits now. Throws FrameTooLarge if it
  /// could never fit.
  [[nodiscard]] bool try_push(std::span<const std::byte> a, std::span<const std::byte> b = {});
  /// Like try_push, but waits (spin, then sleep on the `writable` doorbell) while the ring is
  /// full: back-pressure. False after `timeout` (negative: wait forever).
  bool push(std::span<const std::byte> a, std::span<const std::byte> b, std::chrono::nanoseconds timeout,
            SpinPolicy policy = {});

  /// Waits until a frame of `length` payload bytes fits (sleeping on `writable`). False after
  /// `timeout`. Throws FrameTooLarge if it never can.
  bool wait_for_room(std::size_t length, std::chrono::nanoseconds timeout, SpinPolicy policy = {});

  /// Removes the oldest frame into `out` (resized to the payload). False if the ring is empty.
  [[nodiscard]] bool try_pop(std::vector<std::byte>& out);
  /// Waits for a frame (spin, then sleep on the `readable` doorbell). False after `timeout`.
  bool pop(std::vector<std::byte>& out, std::chrono::nanoseconds timeout, SpinPolicy policy = {});

  /// True if a frame is waiting (consumer side; a hint for the producer side).
  [[nodiscard]] bool readable() const noexcept;
  /// Bytes currently used (a snapshot).
  [[nodiscard]] std::size_t used() const noexcept;

 private:
  Ring(RingHeader* header, std::byte* data, std::size_t capacity, Doorbell* readable, Doorbell* writable) noexcept
      : header_(header), data_(data), capacity_(capacity), readable_(readable), writable_(writable) {}
  void copy_in(std::uint64_t at, std::span<const std::byte> src) noexcept;
  void copy_out(std::uint64_t at, std::byte* dst, std::size_t n) const noexcept;

  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  Doorbell* readable_ = nullptr;
  Doorbell* writable_ = nullptr;
  std::uint64_t cached_head_ = 0;  // producer's last view of head
  std::uint64_t cached_tail_ = 0;  // consumer's last view of tail
};

}  // namespace multilane
