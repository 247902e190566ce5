// cpp/src/supervisor.cpp
// The supervisor's watcher thread: spawn requests in, pidfd readiness to exit events out.
#include "multilane/supervisor.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <utility>

#include "multilane/platform.hpp"

namespace multilane {

struct Supervisor::SpawnRequest {
  const std::vector<std::string>* argv;
  const std::vector<int>* keep_fds;
  pid_t pid = 0;
  std::exception_ptr error;
  bool done = false;
};

Supervisor::Supervisor(std::function<void()> on_exit) : on_exit_(std::move(on_exit)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) throw SystemError("epoll_create1", errno);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) {
    const int err = errno;
    ::close(epoll_);
    throw SystemError("eventfd", err);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  platform::SignalsBlocked blocked;  // the thread starts with them blocked: see run()
  thread_ = std::thread([this] { run(); });
}

Supervisor::~Supervisor() {
  {
    std::lock_guard lock(mutex_);
    for (const auto& [pid, pidfd] : children_) {
      try {
        platform::pidfd_send_signal(pidfd, SIGKILL);
      } catch (...) {
      }
    }
  }
  wait_all(std::chrono::milliseconds(5000));
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  poke();
  thread_.join();
  for (const auto& [pid, pidfd] : children_) platform::close_fd(pidfd);
  ::close(wake_);
  ::close(epoll_);
}

void Supervisor::poke() const {
  const std::uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);
}

pid_t Supervisor::spawn(const std::vector<std::string>& argv, const std::vector<int>& keep_fds) {
  SpawnRequest request{&argv, &keep_fds, 0, nullptr, false};
  std::unique_lock lock(mutex_);
  if (stopping_) throw std::logic_error("Supervisor is stopping");
  requests_.push_back(&request);
  poke();
  changed_.wait(lock, [&] { return request.done; });
  if (request.error) std::rethrow_exception(request.error);
  return request.pid;
}

bool Supervisor::signal(pid_t pid, int sig) {
  std::lock_guard lock(mutex_);
  const auto it = children_.find(pid);
  if (it == children_.end()) return false;
  platform::pidfd_send_signal(it->second, sig);
  return true;
}

std::vector<ExitEvent> Supervisor::take_exits() {
  std::lock_guard lock(mutex_);
  has_exits_.store(false, std::memory_order_relaxed);
  return std::exchange(exits_, {});
}

bool Supervisor::has_exits() const noexcept { return has_exits_.load(std::memory_order_acquire); }

std::size_t Supervisor::alive() const {
  std::lock_guard lock(mutex_);
  return children_.size();
}

bool Supervisor::wait_all(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return children_.empty(); });
}

bool Supervisor::terminate_all(std::chrono::milliseconds grace) {
  auto send_all = [&](int sig) {
    std::lock_guard lock(mutex_);
    for (const auto& [pid, pidfd] : children_) {
      try {
        platform::pidfd_send_signal(pidfd, sig);
      } catch (...) {
      }
    }
  };
  send_all(SIGTERM);
  if (wait_all(grace)) return true;
  send_all(SIGKILL);
  return wait_all(std::chrono::milliseconds(5000));
}

void Supervisor::reap(int pidfd) {
  ExitEvent event;
  bool exited = false;
  try {
    exited = platform::pidfd_reap(pidfd, &event.exit_code, &event.exit_signal);
  } catch (const SystemError& e) {
    exited = e.code() == ECHILD;  // someone else reaped it (os.wait() in user code): status unknown
  }
  if (!exited) return;
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, pidfd, nullptr);
  {
    std::lock_guard lock(mutex_);
    for (auto it = children_.begin(); it != children_.end(); ++it) {
      if (it->second == pidfd) {
        event.pid = it->first;
        children_.erase(it);
        break;
      }
    }
    exits_.push_back(event);
    has_exits_.store(true, std::memory_order_release);
  }
  platform::close_fd(pidfd);
  if (on_exit_) on_exit_();  // before waiters learn of the exit: they may rely on it having run
  changed_.notify_all();
}

void Supervisor::run() {
  // Signals are for the application's threads, not for the watcher.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  epoll_event events[16];
  for (;;) {
    const int n = ::epoll_wait(epoll_, events, 16, -1);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_) {
        std::uint64_t drained;
        (void)!::read(wake_, &drained, sizeof drained);
      } else {
        reap(events[i].data.fd);
      }
    }
    std::vector<SpawnRequest*> pending;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {  // children got SIGKILL in the destructor
        for (auto* r : requests_) {
          r->error = std::make_exception_ptr(std::logic_error("Supervisor is stopping"));
          r->done = true;
        }
        requests_.clear();
        changed_.notify_all();
        return;
      }
      pending.swap(requests_);
    }
    for (auto* request : pending) {
      pid_t pid = 0;
      int pidfd = -1;
      std::exception_ptr error;
      try {
        pid = platform::spawn(*request->argv, *request->keep_fds);
        pidfd = platform::pidfd_open(pid);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = pidfd;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfd, &ev) != 0) throw SystemError("epoll_ctl", errno);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(mutex_);
        if (!error) children_[pid] = pidfd;
        request->pid = pid;
        // Moved, not copied: a copy left on this thread would be released here while the
        // caller handles the exception, a refcount ThreadSanitizer cannot see (libstdc++
        // is not instrumented) and reported as a race.
        request->error = std::move(error);
        request->done = true;
      }
      changed_.notify_all();
    }
  }
}

}  // namespace multilane
