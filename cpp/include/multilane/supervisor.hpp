// cpp/include/multilane/supervisor.hpp
// Supervisor: spawns worker processes, watches them through pidfds, signals and reaps them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace multilane {

struct ExitEvent {
  pid_t pid = 0;
  int exit_code = -1;   // when the process exited normally, else -1
  int exit_signal = 0;  // the signal that killed it, else 0
};

/// Owns a watcher thread that sleeps in epoll on one pidfd per child. Children are forked
/// from that thread, so PR_SET_PDEATHSIG (tied to the forking *thread*) fires only when the
/// whole supervisor goes away, never when some short-lived user thread that asked for a
/// spawn exits. When a child exits the watcher reaps it, queues an ExitEvent and calls
/// `on_exit` (from the watcher thread; keep it short and non-blocking).
///
/// The destructor kills (SIGKILL) and reaps every child still alive.
class Supervisor {
 public:
  explicit Supervisor(std::function<void()> on_exit = {});
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;
  ~Supervisor();

  /// Starts `argv` with `keep_fds` inherited (all other descriptors are closed on exec).
  /// Throws SystemError if the program cannot be executed.
  pid_t spawn(const std::vector<std::string>& argv, const std::vector<int>& keep_fds);
  /// Sends `sig` through the child's pidfd. False if `pid` is not a live child of ours.
  bool signal(pid_t pid, int sig);
  /// Exit events not taken yet, oldest first.
  std::vector<ExitEvent> take_exits();
  /// True if exit events are waiting (cheap; for spin loops).
  [[nodiscard]] bool has_exits() const noexcept;
  /// Children spawned and not reaped yet.
  [[nodiscard]] std::size_t alive() const;
  /// SIGTERM to every child, SIGKILL after `grace` to those still alive; waits until all are
  /// reaped. True if all were reaped.
  bool terminate_all(std::chrono::milliseconds grace);
  /// Waits up to `timeout` until no child is alive.
  bool wait_all(std::chrono::milliseconds timeout);

 private:
  struct SpawnRequest;
  void run();
  void poke() const;
  void reap(int pidfd);

  std::function<void()> on_exit_;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd: new requests or stop
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<pid_t, int> children_;  // pid -> pidfd
  std::vector<SpawnRequest*> requests_;
  std::vector<ExitEvent> exits_;
  std::atomic<bool> has_exits_{false};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace multilane
