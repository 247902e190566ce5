// cpp/include/multilane/wait_watch.hpp
// WaitWatch: tells, from a thread of its own, when a watched thread has been waiting for a while.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "multilane/fork_hooks.hpp"

namespace multilane {

/// Watches threads of this process for waiting. A thread asks to be watched before it
/// starts something that may compute or may wait (the auto lane's first look at a
/// function). `after / 8` in, the watcher takes its counts; if over the next `after` it
/// has used less than `max_cpu` of a core, and the whole process (the watcher aside, each
/// thread read from its own clock) less than `max_process_cpu` cores, the watch's callback
/// runs once on the watcher's own thread, and the watched thread learns of it when it
/// stops being watched. Until then it is looked at again over each next `after`, from
/// the last look: a call that computes a while and then waits is reported once it waits. (The process's share tells a thread
/// waiting for I/O from one waiting for threads of its own that compute: NumPy's first
/// matrix product waited 2 ms for its BLAS threads.) A thread the scheduler keeps from a
/// core is not waiting either, though its CPU clock stands still: one that is runnable
/// when looked at, or that waited for a core over the span (its schedstat run delay), is
/// looked at again. (A pure-Python first call sharing a core with another process was
/// taken for waiting, and its map sent to threads.) The first look only counts because
/// the watched thread reads no /proc file when it asks: that would cost it ~10 µs.
///
/// Why a native thread: the watcher must not cost the watched thread anything. Waking a
/// Python thread for each watch cost the caller 13-20 µs on a 2-core VM (a futex wake, a
/// context switch, the GIL), more than a map of twenty tiny calls takes. This thread reads
/// the watched thread's CPU clock without the GIL, and sleeps until its earliest watch is
/// due: a watch is a few stores under a lock and at most one futex wake, with no GIL and
/// no Python thread involved. `linger` after its last watch the thread ends, and the next
/// watch starts it again (~50 µs, once per quiet spell), so an idle process keeps no
/// thread for it. (It polled every millisecond at first: with both cores busy, each wake
/// made it a task waiting for a core, and the auto lane read the machine as contended.)
///
/// A watch may also have a hook for the looks that find its thread computing (using at
/// least half a core over the span, the counting look's included): it runs on the
/// watcher's thread, and again at such later looks as long as it returns true. The auto
/// lane's binding times there how long the watcher waits for Python's GIL: about one
/// switch interval if the computing thread holds it, next to nothing if it let go. (While
/// a hook blocks, other watches due are looked at late.)
///
/// Callbacks and hooks run outside the lock, one at a time; they are also destroyed
/// outside it (a binding's callback may need a lock of its own, such as Python's GIL, to
/// be destroyed).
/// In a child forked from the process the watcher's thread is gone: the first watch there
/// starts a new one (its lock is held across forks: a child never inherits it taken).
class WaitWatch final : private ForkHooks {
 public:
  using Callback = std::function<void()>;
  using ComputingHook = std::function<bool()>;  // true: call it again at the next such look

  explicit WaitWatch(std::chrono::nanoseconds linger = std::chrono::milliseconds(250));
  ~WaitWatch();  // close()
  WaitWatch(const WaitWatch&) = delete;
  WaitWatch& operator=(const WaitWatch&) = delete;

  /// Watches the calling thread from now on. Returns the watch's id (never 0).
  std::uint64_t watch(std::chrono::nanoseconds after, double max_cpu, double max_process_cpu,
                      Callback on_waiting, ComputingHook on_computing = nullptr);
  /// Ends a watch: true if its callback ran, false if it never will. If its callback or
  /// hook is running, this waits for its end (so the caller must not hold what they may
  /// wait for): after it, neither runs for this watch. An unknown or ended id is false.
  bool unwatch(std::uint64_t id);
  /// Stops the watcher's thread (a callback running finishes first); watches left never fire.
  void close();
  /// Ends the watcher's thread now if nothing is watched, rather than `linger` later, and
  /// waits for its end: an executor that shuts down leaves no thread behind. The next
  /// watch starts a new one. Does nothing while a watch is on.
  void end_if_idle();

  struct Stats {
    std::uint64_t watches = 0;
    std::uint64_t fired = 0;
    std::uint64_t polls = 0;  // times the watcher woke to look at a watch due
    std::uint64_t threads_started = 0;
    bool thread_up = false;  // its thread runs now (it ends `linger` after the last watch)
  };
  [[nodiscard]] Stats stats() const;

 private:
  struct Entry {
    std::uint64_t id = 0;
    clockid_t clock{};
    std::chrono::steady_clock::time_point start;
    std::chrono::steady_clock::time_point due;
    std::chrono::nanoseconds after{};
    std::int64_t cpu_start_ns = 0;
    std::int64_t process_start_ns = -1;  // set by the first look (the watcher's reading)
    pid_t tid = 0;
    std::int64_t run_delay_start_ns = -1;  // its wait for a core so far; -1 if unknown
    bool counted = false;  // its first look (which only takes counts) is done
    bool gone = false;     // its thread ended: nothing to look at any more
    double max_cpu = 0;
    double max_process_cpu = 0;
    Callback on_waiting;
    ComputingHook on_computing;
  };
  enum class Look { kOther, kWaiting, kComputing };
  static constexpr int kCountingLookDivisor = 8;  // the first look comes `after / 8` in
  static constexpr double kComputingCpu = 0.5;    // of a core over a span: computing
  void run();
  /// Reads `entry`'s clocks and the kernel's view of its thread (without the lock: the
  /// entry is the watcher's while it looks), against `process_now`, the CPU time of the
  /// process's threads but the watcher (-1 if unknown): whether it waits (fire),
  /// computes (its hook) or neither. Unless it waits it is made ready for its next look,
  /// or, if its thread is gone, marked `gone`.
  Look look_at(Entry& entry, std::chrono::steady_clock::time_point now, std::int64_t process_now) const;
  void start_thread_locked();
  void before_fork() noexcept override { mu_.lock(); }
  void after_fork(bool in_child) noexcept override;

  const std::chrono::nanoseconds linger_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable callback_done_;
  std::uint64_t running_ = 0;  // the watch whose callback or hook runs now
  std::vector<Entry> entries_;
  std::vector<std::uint64_t> fired_;  // ids whose callback has started, until unwatched
  // Watches the watcher is looking at, outside its lock; those unwatched meanwhile, which
  // it drops instead of firing or looking at again.
  std::vector<std::uint64_t> looking_;
  std::vector<std::uint64_t> cancelled_;
  std::uint64_t next_id_ = 1;
  std::chrono::steady_clock::time_point sleeping_until_{};  // the watcher's wake-up, if timed
  bool woken_early_ = false;  // a watch due sooner than that woke it
  bool parked_ = false;       // sleeping with no watch: a new one wakes it
  bool running_thread_ = false;  // the watcher's thread is up (it may still be ending)
  bool closing_ = false;
  bool end_idle_ = false;  // end_if_idle() asks the parked thread to end now
  std::condition_variable ended_;  // the thread has ended, or a watch came (end_if_idle)
  std::thread thread_;
  pid_t thread_pid_ = 0;  // the process the thread runs in (none in a forked child)
  Stats stats_;
};

}  // namespace multilane
