// cpp/src/wait_watch.cpp
// WaitWatch: a native thread that reads watched threads' CPU clocks, polling while watches come.
#include "multilane/wait_watch.hpp"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "multilane/platform.hpp"

namespace multilane {

namespace {

std::int64_t cpu_ns(clockid_t clock, bool* ok) {
  timespec ts{};
  *ok = ::clock_gettime(clock, &ts) == 0;
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

WaitWatch::WaitWatch(std::chrono::nanoseconds every, std::chrono::nanoseconds linger)
    : every_(every), linger_(linger) {
  watch_forks();
}

WaitWatch::~WaitWatch() {
  close();
  stop_watching_forks();
}

void WaitWatch::start_thread_locked() {
  const pid_t self = platform::current_pid();
  if (running_thread_ && thread_pid_ == self) return;
  if (thread_.joinable()) {
    if (thread_pid_ == self) {
      thread_.join();  // it ended after lingering (it let go of the lock on its way out)
    } else {
      thread_.detach();  // forked: the object was copied, its thread was not
      entries_.clear();  // (the other threads' watches: those threads are not here)
      fired_.clear();
      running_ = 0;
    }
  }
  running_thread_ = true;
  ++stats_.threads_started;
  thread_pid_ = self;
  thread_ = std::thread([this] { run(); });
}

std::uint64_t WaitWatch::watch(std::chrono::nanoseconds after, double max_cpu, double max_process_cpu,
                               Callback on_waiting) {
  Entry entry;
  if (::pthread_getcpuclockid(::pthread_self(), &entry.clock) != 0) return 0;
  bool ok = false;
  bool process_ok = false;
  entry.cpu_start_ns = cpu_ns(entry.clock, &ok);
  entry.process_start_ns = cpu_ns(CLOCK_PROCESS_CPUTIME_ID, &process_ok);
  if (!ok || !process_ok) return 0;
  entry.max_process_cpu = max_process_cpu;
  entry.start = std::chrono::steady_clock::now();
  entry.due = entry.start + after;
  entry.max_cpu = max_cpu;
  entry.on_waiting = std::move(on_waiting);
  std::unique_lock lock(mu_);
  if (closing_) return 0;
  start_thread_locked();  // first: in a forked child it forgets the parent's watches
  entry.id = next_id_++;
  const std::uint64_t id = entry.id;
  last_watch_ = entry.start;
  entries_.push_back(std::move(entry));  // a polling watcher sees it next time: no wake-up
  ++stats_.watches;
  return id;
}

bool WaitWatch::unwatch(std::uint64_t id) {
  Callback dropped;  // destroyed after the lock is let go
  std::unique_lock lock(mu_);
  const auto it = std::find_if(entries_.begin(), entries_.end(), [id](const Entry& e) { return e.id == id; });
  if (it != entries_.end()) {
    dropped = std::move(it->on_waiting);
    entries_.erase(it);
    return false;
  }
  if (std::find(fired_.begin(), fired_.end(), id) == fired_.end()) return false;
  // `running_` is only ever this id while the watcher's thread runs its callback.
  callback_done_.wait(lock, [&] { return running_ != id; });
  std::erase(fired_, id);
  return true;
}

void WaitWatch::close() {
  std::vector<Entry> left;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    left.swap(entries_);
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    if (thread_pid_ == platform::current_pid()) {
      thread_.join();
    } else {
      thread_.detach();  // a forked child's copy: no thread of ours behind it
    }
  }
}

WaitWatch::Stats WaitWatch::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.thread_up = running_thread_;
  return s;
}

void WaitWatch::run() {
  std::unique_lock lock(mu_);
  while (!closing_) {
    if (entries_.empty() && std::chrono::steady_clock::now() - last_watch_ >= linger_) {
      running_thread_ = false;  // the next watch starts a new thread (and joins this one)
      return;
    }
    wake_.wait_for(lock, every_, [this] { return closing_; });
    if (closing_) break;
    ++stats_.polls;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Entry> due;  // looked at once, then done with, whatever they show
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->due <= now) {
        due.push_back(std::move(*it));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    for (Entry& entry : due) {
      bool ok = false;
      bool process_ok = false;
      const std::int64_t used = cpu_ns(entry.clock, &ok) - entry.cpu_start_ns;
      const std::int64_t process = cpu_ns(CLOCK_PROCESS_CPUTIME_ID, &process_ok) - entry.process_start_ns;
      const auto wall = static_cast<double>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - entry.start).count());
      if (ok && process_ok && static_cast<double>(used) < entry.max_cpu * wall &&
          static_cast<double>(process) < entry.max_process_cpu * wall) {
        fired_.push_back(entry.id);
        ++stats_.fired;
        running_ = entry.id;
        lock.unlock();
        try {
          entry.on_waiting();
        } catch (...) {  // the callback's own business (a binding reports its errors)
        }
        entry.on_waiting = nullptr;
        lock.lock();
        running_ = 0;
        callback_done_.notify_all();
      }
    }
    if (!due.empty()) {  // the callbacks of the others are destroyed outside the lock too
      lock.unlock();
      due.clear();
      lock.lock();
    }
  }
}

}  // namespace multilane
