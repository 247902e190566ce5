// cpp/src/wait_watch.cpp
// WaitWatch: a native thread that reads watched threads' CPU clocks when their watches are due.
#include "multilane/wait_watch.hpp"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <new>
#include <optional>
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

WaitWatch::WaitWatch(std::chrono::nanoseconds linger) : linger_(linger) {
  watch_forks();
}

WaitWatch::~WaitWatch() {
  close();
  stop_watching_forks();
}

void WaitWatch::after_fork(bool in_child) noexcept {
  if (in_child) {
    // The watcher's thread is not here, but it may have been waiting on a condition
    // variable when the process forked: the copy still counts it as a waiter, and a
    // wait or a notify on it could hang (glibc waits for waiters of an old group to
    // leave). The child gets new ones, and a watcher that is neither parked nor asleep.
    new (&wake_) std::condition_variable();
    new (&callback_done_) std::condition_variable();
    new (&ended_) std::condition_variable();
    parked_ = false;
    end_idle_ = false;
    woken_early_ = false;
    sleeping_until_ = {};
  }
  mu_.unlock();
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
      looking_.clear();
      cancelled_.clear();
      running_ = 0;
    }
  }
  running_thread_ = true;
  ++stats_.threads_started;
  thread_pid_ = self;
  platform::SignalsBlocked blocked;  // the thread starts with them blocked: see run()
  thread_ = std::thread([this] { run(); });
}

std::uint64_t WaitWatch::watch(std::chrono::nanoseconds after, double max_cpu, double max_process_cpu,
                               Callback on_waiting, ComputingHook on_computing) {
  Entry entry;
  if (::pthread_getcpuclockid(::pthread_self(), &entry.clock) != 0) return 0;
  bool ok = false;
  entry.cpu_start_ns = cpu_ns(entry.clock, &ok);
  if (!ok) return 0;
  entry.max_process_cpu = max_process_cpu;
  entry.tid = platform::current_tid();
  entry.start = std::chrono::steady_clock::now();
  entry.after = after;
  // The first look only takes counts (the caller reads no /proc file when it asks to be
  // watched): it comes soon, and the judging ones every `after` from it.
  entry.due = entry.start + after / kCountingLookDivisor;
  entry.max_cpu = max_cpu;
  entry.on_waiting = std::move(on_waiting);
  entry.on_computing = std::move(on_computing);
  std::unique_lock lock(mu_);
  if (closing_) return 0;
  start_thread_locked();  // first: in a forked child it forgets the parent's watches
  entry.id = next_id_++;
  const std::uint64_t id = entry.id;
  // The watcher sleeps until its earliest watch is due: woken only if this one is due
  // sooner (or it sleeps with none). A watch costs the caller one futex wake at most.
  const bool wake = parked_ || (sleeping_until_ != std::chrono::steady_clock::time_point{} &&
                                entry.due < sleeping_until_);
  entries_.push_back(std::move(entry));
  ++stats_.watches;
  if (wake) {
    woken_early_ = !parked_;
    lock.unlock();
    wake_.notify_one();
  }
  return id;
}

bool WaitWatch::unwatch(std::uint64_t id) {
  Callback dropped;  // destroyed after the lock is let go
  ComputingHook dropped_hook;
  std::unique_lock lock(mu_);
  const auto it = std::find_if(entries_.begin(), entries_.end(), [id](const Entry& e) { return e.id == id; });
  if (it != entries_.end()) {
    dropped = std::move(it->on_waiting);
    dropped_hook = std::move(it->on_computing);
    entries_.erase(it);
    return false;
  }
  if (std::find(fired_.begin(), fired_.end(), id) == fired_.end()) {
    // Being looked at now: it must not fire after this says it never will, and its hook,
    // if running, must be over when this returns.
    if (std::find(looking_.begin(), looking_.end(), id) != looking_.end()) {
      cancelled_.push_back(id);
      callback_done_.wait(lock, [&] { return running_ != id; });
    }
    return false;
  }
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

void WaitWatch::end_if_idle() {
  std::unique_lock lock(mu_);
  if (!running_thread_ || thread_pid_ != platform::current_pid() || !entries_.empty()) return;
  end_idle_ = true;
  wake_.notify_all();
  ended_.wait(lock, [this] { return !running_thread_ || !entries_.empty() || closing_; });
  if (!running_thread_ && thread_.joinable()) {
    thread_.join();  // it has let go of the lock on its way out
  }
}

WaitWatch::Stats WaitWatch::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.thread_up = running_thread_;
  return s;
}

WaitWatch::Look WaitWatch::look_at(Entry& entry, std::chrono::steady_clock::time_point now,
                                   std::int64_t process_now) const {
  bool ok = false;
  const std::int64_t cpu_now = cpu_ns(entry.clock, &ok);
  const bool process_ok = process_now >= 0 && entry.process_start_ns >= 0;
  if (!ok) {
    entry.gone = true;
    return Look::kOther;
  }
  const auto wall =
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - entry.start).count());
  bool thread_waits = static_cast<double>(cpu_now - entry.cpu_start_ns) < entry.max_cpu * wall;
  const bool process_idle =
      process_ok && static_cast<double>(process_now - entry.process_start_ns) < entry.max_process_cpu * wall;
  platform::ThreadSched sched;
  const bool sched_known = platform::thread_sched(entry.tid, &sched);
  if (thread_waits && process_idle && sched_known) {
    // Its clock stood still: because it waits, or because the scheduler kept it from a
    // core (another process on it)? Runnable now, or kept waiting for a core over the
    // span, it was kept.
    const bool kept = entry.run_delay_start_ns >= 0 && sched.run_delay_ns >= 0 &&
                      static_cast<double>(cpu_now - entry.cpu_start_ns + sched.run_delay_ns -
                                          entry.run_delay_start_ns) >= entry.max_cpu * wall;
    thread_waits = !sched.runnable && !kept;
  }
  const bool judging = entry.counted;  // the first look only takes the counts
  entry.counted = true;
  if (judging && thread_waits && process_idle) return Look::kWaiting;
  // (Computing needs no kernel check: a thread that used half a core over the span ran.)
  const bool computing = static_cast<double>(cpu_now - entry.cpu_start_ns) >= kComputingCpu * wall;
  // Computing, or waiting while its process computes (for threads of its own, as BLAS, or
  // something else going on), or kept from a core, or only counted so far: looked at
  // again over the next interval, from now. (A first call spent its first 2 ms in a
  // garbage collection, then waited 10 s: looked at once only, it was taken for computing.)
  entry.start = now;
  entry.due = now + entry.after;
  entry.cpu_start_ns = cpu_now;
  entry.process_start_ns = process_now;
  entry.run_delay_start_ns = sched_known ? sched.run_delay_ns : -1;
  return computing ? Look::kComputing : Look::kOther;
}

void WaitWatch::run() {
  // Signals are for the application's threads, not for the watcher (as the Supervisor's).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(mu_);
  while (!closing_) {
    if (entries_.empty()) {
      // Nothing to look at: sleep until a watch comes (it wakes this thread), and end
      // after `linger` without one (the next watch starts a new thread).
      parked_ = true;
      const bool woken =
          wake_.wait_for(lock, linger_, [this] { return closing_ || end_idle_ || !entries_.empty(); });
      parked_ = false;
      const bool asked_to_end = end_idle_ && entries_.empty() && !closing_;
      end_idle_ = false;
      if (!woken || asked_to_end) {
        running_thread_ = false;
        ended_.notify_all();
        return;
      }
      ended_.notify_all();  // a watch came: end_if_idle() stops waiting for the end
      continue;
    }
    // Sleep exactly until the earliest watch is due (no polling in between: a thread
    // waking every millisecond was a task waiting for a core whenever both were busy,
    // which the auto lane's pair probes read as a machine with no core to spare).
    auto next = entries_.front().due;
    for (const Entry& e : entries_) next = std::min(next, e.due);
    sleeping_until_ = next;
    wake_.wait_until(lock, next, [this] { return closing_ || woken_early_; });
    woken_early_ = false;
    sleeping_until_ = {};
    if (closing_) break;
    ++stats_.polls;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Entry> due;  // taken out while looked at; back in if they do not wait
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->due <= now) {
        looking_.push_back(it->id);
        due.push_back(std::move(*it));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    // Runs a watch's callback or hook with the lock let go, as the one running (unwatch()
    // waits for it); what it throws is its own business (a binding reports its errors).
    const auto run_unlocked = [&](std::uint64_t id, const auto& body) {
      running_ = id;
      lock.unlock();
      try {
        body();
      } catch (...) {
      }
      lock.lock();
      running_ = 0;
      callback_done_.notify_all();
    };
    // The process's threads but this one, each from its own clock (the process clock
    // counts the others' time only at scheduler ticks: a BLAS thread's 1.5 ms in a matrix
    // product read 0 in most, and it would count the watcher's own looks). Read once a
    // poll, as `now` is, for every watch due: one walk of /proc/self/task, not one each.
    std::optional<std::int64_t> others_ns;
    for (Entry& entry : due) {
      lock.unlock();  // clocks and small /proc reads (~10 us): watch() need not wait
      if (!others_ns) others_ns = platform::other_threads_cpu_ns();
      const Look look = look_at(entry, now, *others_ns);
      lock.lock();
      if (std::erase(cancelled_, entry.id) > 0 || entry.gone) continue;
      if (look == Look::kComputing && entry.on_computing) {
        run_unlocked(entry.id, [&] {  // kept while it asks for more; destroyed unlocked
          ComputingHook hook = std::exchange(entry.on_computing, nullptr);
          if (hook()) entry.on_computing = std::move(hook);
        });
        if (std::erase(cancelled_, entry.id) > 0) continue;
      }
      if (look != Look::kWaiting) {
        entries_.push_back(std::move(entry));
        continue;
      }
      fired_.push_back(entry.id);
      ++stats_.fired;
      run_unlocked(entry.id, [&] {  // both destroyed outside the lock, thrown or not
        const Callback callback = std::exchange(entry.on_waiting, nullptr);
        const ComputingHook dropped_hook = std::exchange(entry.on_computing, nullptr);
        if (callback) callback();
      });
    }
    looking_.clear();
    cancelled_.clear();
    if (!due.empty()) {  // the callbacks of the others are destroyed outside the lock too
      lock.unlock();
      due.clear();
      lock.lock();
    }
  }
}

}  // namespace multilane
