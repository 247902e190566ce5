// cpp/include/multilane/doorbell.hpp
// Doorbell: an event count on a process-shared futex; rings only when someone sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>

#include "multilane/platform.hpp"

namespace multilane {

/// How long a waiter spins before it sleeps on the futex.
struct SpinPolicy {
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
};

/// Lives in shared memory (zero-initialised memory is a valid idle doorbell).
///
/// Protocol (an event count): a waiter announces itself in `sleepers`, re-checks its
/// condition, then sleeps on `seq` with the value it read before announcing. A notifier
/// publishes its data, then `ring()`s: it bumps `seq` and wakes the futex only when
/// `sleepers` is non-zero, so the fast path of a busy producer is one fence and one load.
/// The two seq_cst fences (in `ring` and in `wait_until`) order "publish data, read
/// sleepers" against "announce sleeper, read data" (Dekker), so a wake-up is never lost.
struct Doorbell {
  std::atomic<std::uint32_t> seq{0};       // written by notifiers; the futex word
  std::atomic<std::uint32_t> sleepers{0};  // written by waiters

  void ring() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in wait_until
    if (sleepers.load(std::memory_order_relaxed) != 0) {
      seq.fetch_add(1, std::memory_order_release);
      platform::futex_wake_all(reinterpret_cast<const std::uint32_t*>(&seq));
    }
  }

  /// Waits until `ready()` is true or `timeout` passes (negative: forever). Spins for
  /// `policy.spin` first. Returns `ready()`'s final value.
  template <class Ready>
  bool wait_until(Ready&& ready, std::chrono::nanoseconds timeout, SpinPolicy policy = {}) {
    using Clock = std::chrono::steady_clock;
    if (ready()) return true;
    const auto start = Clock::now();
    const bool forever = timeout.count() < 0;
    const auto spin_until = start + std::min(policy.spin, forever ? policy.spin : timeout);
    for (unsigned i = 1;; ++i) {
      if (ready()) return true;
      if ((i & 63U) == 0 && Clock::now() >= spin_until) break;
      platform::cpu_relax();
    }
    for (;;) {
      std::chrono::nanoseconds left{-1};
      if (!forever) {
        left = timeout - std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
        if (left.count() <= 0) return ready();
      }
      const std::uint32_t key = seq.load(std::memory_order_acquire);
      sleepers.fetch_add(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in ring()
      if (ready()) {
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        return true;
      }
      platform::futex_wait(reinterpret_cast<const std::uint32_t*>(&seq), key, left);
      sleepers.fetch_sub(1, std::memory_order_relaxed);
      if (ready()) return true;
    }
  }
};

static_assert(std::is_standard_layout_v<Doorbell>);
static_assert(sizeof(Doorbell) == 8);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace multilane
