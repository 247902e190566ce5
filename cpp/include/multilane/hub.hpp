// cpp/include/multilane/hub.hpp
// Hub: the parent's side of a worker pool: links, spawning, sending, and one wait for all.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "multilane/link.hpp"
#include "multilane/supervisor.hpp"

namespace multilane {

struct HubOptions {
  std::size_t ring_capacity = std::size_t{1} << 20;  // bytes per direction per worker
  std::size_t inline_max = 0;                        // 0: ring_capacity / 16
  SpinPolicy spin{};
  Arena* arena = nullptr;  // blobs to workers are packed here (borrowed; see Channel)
};

/// Something the collector must handle: a frame from a worker, or a worker's exit.
struct HubEvent {
  enum class Type { kFrame, kExit };
  Type type = Type::kFrame;
  int slot = -1;
  Frame frame;        // kFrame
  ExitEvent exit;     // kExit
  std::uint64_t running_task = 0;  // kExit: the task the worker had started and not finished
};

/// Slots number workers for the parent's lifetime (a replacement gets a new slot).
///
/// Threading: `try_send` to one slot must be serialised by the caller (the ring has one
/// producer); `wait` and `release` belong to one collector thread; the rest may be called
/// from any thread.
///
/// Every exit is delivered after the last frame its worker sent, so the collector can
/// first complete what finished and then fail what was running.
class Hub {
 public:
  explicit Hub(HubOptions options = {});
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;
  ~Hub();  // kills and reaps every worker still alive

  struct Spawned {
    int slot;
    pid_t pid;
  };
  /// Creates a link and starts `argv` followed by "--multilane-fds=LINK,HUB,SOCKET,LIFELINE".
  /// The lifeline is a pipe whose write end only the parent holds: EOF tells a worker that
  /// its parent is gone even if PR_SET_PDEATHSIG did not fire.
  Spawned spawn(std::vector<std::string> argv);
  /// Sends without blocking; false if the worker's ring has no room now.
  [[nodiscard]] bool try_send(int slot, const FrameHeader& header, std::span<const std::byte> payload,
                              std::span<const Attachment> attachments = {});
  /// Waits up to `timeout` (negative: forever) until something happens, then returns up to
  /// `max_events` events (more when a worker's exit needs its last frames delivered first).
  /// An empty result means a timeout or a `wake()`. Same as a background `wait_ready`
  /// then `drain`: for a program with one collector thread and no helpers.
  std::vector<HubEvent> wait(std::chrono::nanoseconds timeout, std::size_t max_events);
  /// Waits (spinning for `spin` first) until a frame or an exit is waiting, or a `wake()`.
  /// False after `timeout`. A `background` waiter also ignores frames while a helper (see
  /// `begin_help`) is draining them, so it sleeps instead of competing for them.
  bool wait_ready(std::chrono::nanoseconds timeout, SpinPolicy spin, bool background);
  /// Takes what is waiting (exits with their workers' last frames first, then frames,
  /// round-robin over workers), without waiting. Callers that process events in order
  /// must serialise drain-and-process themselves.
  std::vector<HubEvent> drain(std::size_t max_events);
  /// A thread waiting for a result is about to drain replies itself; `end_help` when done
  /// (it re-rings the doorbell if frames are left for the background waiter).
  void begin_help() noexcept;
  void end_help() noexcept;
  /// Makes every current `wait`/`wait_ready` return, and the next one of each thread
  /// that has not seen this wake yet.
  void wake() noexcept;
  bool signal(int slot, int sig);
  [[nodiscard]] std::uint64_t running_task(int slot) const;
  /// Frees a slot whose exit was handled.
  void release(int slot);
  /// Asks all workers to stop (SIGTERM, SIGKILL after `grace`) and reaps them.
  bool terminate_all(std::chrono::milliseconds grace);
  /// Waits until no worker process is alive.
  bool wait_all(std::chrono::milliseconds timeout) { return supervisor_.wait_all(timeout); }
  [[nodiscard]] std::size_t alive() const { return supervisor_.alive(); }
  [[nodiscard]] const HubOptions& options() const noexcept { return options_; }

 private:
  struct Slot;
  using Slots = std::vector<std::shared_ptr<Slot>>;
  std::shared_ptr<Slot> find(int slot) const;
  Slots live() const;
  static bool any_readable(const Slots& slots);

  HubOptions options_;
  ShmRegion hub_;
  HubHeader* header_ = nullptr;
  int lifeline_read_ = -1;
  int lifeline_write_ = -1;
  std::atomic<std::uint64_t> wake_epoch_{0};  // bumped by wake()
  std::atomic<std::uint64_t> background_seen_{0};  // the last wake the background waiter saw
  std::atomic<int> helpers_{0};                // threads between begin_help and end_help
  mutable std::mutex mutex_;
  Slots slots_;                                // index = slot number; null once released
  std::atomic<std::uint64_t> generation_{0};   // bumped when slots_ changes
  std::mutex drain_mutex_;                     // one drain at a time
  std::size_t next_poll_ = 0;                  // round-robin start, for fairness (drain_mutex_)
  Supervisor supervisor_;                        // last: destroyed first, killing the workers
};

}  // namespace multilane
