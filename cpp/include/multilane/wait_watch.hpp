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
/// function); if, `after` later, it has used less than `max_cpu` of a core since, and the
/// whole process less than `max_process_cpu` cores, the watch's callback runs once on the
/// watcher's own thread, and the watched thread learns of it when it stops being watched.
/// (The process's share tells a thread waiting for I/O from one waiting for threads of
/// its own that compute: NumPy's first matrix product waited 2 ms for its BLAS threads.)
///
/// Why a native thread: the watcher must not cost the watched thread anything. Waking a
/// Python thread for each watch cost the caller 13-20 µs on a 2-core VM (a futex wake, a
/// context switch, the GIL), more than a map of twenty tiny calls takes. This thread reads
/// the watched thread's CPU clock without the GIL and polls every `every` while watches
/// come (a watch is then a few stores under a lock, no wake-up); `linger` after the last
/// watch it ends, and the next watch starts it again (~50 µs, once per quiet spell), so
/// an idle process keeps no thread for it.
///
/// Callbacks run outside the lock, one at a time; they are also destroyed outside it (a
/// binding's callback may need a lock of its own, such as Python's GIL, to be destroyed).
/// In a child forked from the process the watcher's thread is gone: the first watch there
/// starts a new one (its lock is held across forks: a child never inherits it taken).
class WaitWatch final : private ForkHooks {
 public:
  using Callback = std::function<void()>;

  explicit WaitWatch(std::chrono::nanoseconds every = std::chrono::milliseconds(1),
                     std::chrono::nanoseconds linger = std::chrono::milliseconds(250));
  ~WaitWatch();  // close()
  WaitWatch(const WaitWatch&) = delete;
  WaitWatch& operator=(const WaitWatch&) = delete;

  /// Watches the calling thread from now on. Returns the watch's id (never 0).
  std::uint64_t watch(std::chrono::nanoseconds after, double max_cpu, double max_process_cpu,
                      Callback on_waiting);
  /// Ends a watch: true if its callback ran (if it is running, this waits for its end, so
  /// it must not wait for what the caller holds), false if it never will. An unknown or
  /// ended id is false.
  bool unwatch(std::uint64_t id);
  /// Stops the watcher's thread (a callback running finishes first); watches left never fire.
  void close();

  struct Stats {
    std::uint64_t watches = 0;
    std::uint64_t fired = 0;
    std::uint64_t polls = 0;  // times the watcher woke to look
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
    std::int64_t cpu_start_ns = 0;
    std::int64_t process_start_ns = 0;
    double max_cpu = 0;
    double max_process_cpu = 0;
    Callback on_waiting;
  };
  void run();
  void start_thread_locked();
  void before_fork() noexcept override { mu_.lock(); }
  void after_fork() noexcept override { mu_.unlock(); }

  const std::chrono::nanoseconds every_;
  const std::chrono::nanoseconds linger_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable callback_done_;
  std::uint64_t running_ = 0;  // the watch whose callback runs now
  std::vector<Entry> entries_;
  std::vector<std::uint64_t> fired_;  // ids whose callback has started, until unwatched
  std::uint64_t next_id_ = 1;
  std::chrono::steady_clock::time_point last_watch_;  // it lingers `linger` from here
  bool running_thread_ = false;  // the watcher's thread is up (it may still be ending)
  bool closing_ = false;
  std::thread thread_;
  pid_t thread_pid_ = 0;  // the process the thread runs in (none in a forked child)
  Stats stats_;
};

}  // namespace multilane
