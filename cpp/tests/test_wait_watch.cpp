// cpp/tests/test_wait_watch.cpp
// WaitWatch: a waiting thread is reported once, a computing one never; watches end cleanly.
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "multilane/wait_watch.hpp"

using namespace multilane;
using namespace std::chrono_literals;

namespace {

// The auto lane looks after 2 ms; 20 here, so that what a sanitizer makes a thread spend
// right after it asks to be watched (1.2 ms of CPU in 2.5 ms under TSan) does not count.
constexpr auto kAfter = 20ms;
constexpr auto kBound = 10s;  // any wait longer than this is a deadlock

/// Spins on the CPU until the watcher has looked at the watch due (its count of looks went
/// up), so that a callback that was going to fire has fired.
void compute_until_looked_at(const WaitWatch& watch, std::uint64_t polls_before) {
  const auto start = std::chrono::steady_clock::now();
  while (watch.stats().polls <= polls_before) {
    ASSERT_LT(std::chrono::steady_clock::now() - start, kBound);
  }
}

}  // namespace

TEST(WaitWatch, AWaitingThreadIsReportedOnce) {
  WaitWatch watch;
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  std::atomic<int> calls{0};
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] {
    if (calls.fetch_add(1) == 0) told.set_value();
  });
  ASSERT_NE(id, 0U);
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready);  // waiting: uses no CPU
  EXPECT_TRUE(watch.unwatch(id)) << "the callback ran";
  EXPECT_FALSE(watch.unwatch(id)) << "an ended watch is unknown";
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(watch.stats().fired, 1U);
}

TEST(WaitWatch, AComputingThreadIsNeverReported) {
  WaitWatch watch;
  std::atomic<int> calls{0};
  const auto polls = watch.stats().polls;
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { ++calls; });
  compute_until_looked_at(watch, polls + 1);  // the counting look, then a judging one
  EXPECT_FALSE(watch.unwatch(id));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(watch.stats().fired, 0U);
}

TEST(WaitWatch, AThreadThatComputesThenWaitsIsReportedOnceItWaits) {
  WaitWatch watch;
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  const auto polls = watch.stats().polls;
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
  compute_until_looked_at(watch, polls + 1);  // a judging look finds it computing...
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready) << "...a later one waiting";
  EXPECT_TRUE(watch.unwatch(id));
}

TEST(WaitWatch, AThreadWaitingForItsProcessToComputeIsNotReported) {
  WaitWatch watch;
  std::atomic<bool> stop{false};
  std::jthread helper([&] {  // the process computes on another thread meanwhile
    while (!stop) {
    }
  });
  std::atomic<int> calls{0};
  const auto polls = watch.stats().polls;
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { ++calls; });
  const auto start = std::chrono::steady_clock::now();
  while (watch.stats().polls <= polls + 1) {  // the counting look, then a judging one
    std::this_thread::sleep_for(100us);  // this thread waits, its process does not
    ASSERT_LT(std::chrono::steady_clock::now() - start, kBound);
  }
  EXPECT_FALSE(watch.unwatch(id));
  stop = true;
  EXPECT_EQ(calls.load(), 0);
}

TEST(WaitWatch, AThreadStillWaitingOnceItsProcessIsIdleIsReported) {
  WaitWatch watch;
  std::atomic<bool> stop{false};
  const auto polls = watch.stats().polls;
  // The process computes until the watcher has judged it busy once (the counting look,
  // then a judging one), then stops. "Busy" is a tenth of a core here, not the auto
  // lane's half: with both cores taken by other processes, the spinning helper got less
  // than half of one over the first span in 16 runs of 60, and was rightly found at rest.
  std::jthread helper([&] {
    const auto start = std::chrono::steady_clock::now();
    while (!stop && watch.stats().polls < polls + 2 && std::chrono::steady_clock::now() - start < kBound) {
    }
  });
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.1, [&] { told.set_value(); });
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready) << "looked at again, then reported";
  EXPECT_TRUE(watch.unwatch(id));
  EXPECT_GE(watch.stats().polls, 3U);  // counting, judging it busy, judging it idle
  stop = true;
}

TEST(WaitWatch, AWatchEndedInTimeNeverFires) {
  WaitWatch watch;
  std::atomic<int> calls{0};
  const std::uint64_t id = watch.watch(1s, 0.1, 0.5, [&] { ++calls; });
  EXPECT_FALSE(watch.unwatch(id));
  const auto polls = watch.stats().polls;
  const std::uint64_t next = watch.watch(kAfter, 0.1, 0.5, [] {});  // due sooner: wakes it
  EXPECT_NE(next, id);
  compute_until_looked_at(watch, polls);
  watch.unwatch(next);
  EXPECT_EQ(calls.load(), 0);
}

TEST(WaitWatch, PollsOnlyWhileWatchesComeThenEndsItsThread) {
  WaitWatch watch(20ms);
  EXPECT_FALSE(watch.stats().thread_up) << "no thread before the first watch";
  watch.unwatch(watch.watch(kAfter, 0.1, 0.5, [] {}));
  EXPECT_TRUE(watch.stats().thread_up);
  // `linger` after the last watch, its thread ends.
  const auto start = std::chrono::steady_clock::now();
  while (watch.stats().thread_up) {
    std::this_thread::sleep_for(1ms);
    ASSERT_LT(std::chrono::steady_clock::now() - start, kBound) << "the thread never ended";
  }
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready) << "the next watch started it again";
  EXPECT_TRUE(watch.unwatch(id));
  EXPECT_EQ(watch.stats().threads_started, 2U);
}

TEST(WaitWatch, EndIfIdleEndsAParkedThreadAtOnceAndLeavesAWatchedOneUp) {
  WaitWatch watch(10s);  // would linger for ten seconds
  watch.end_if_idle();   // no thread yet: nothing to do
  watch.unwatch(watch.watch(kAfter, 0.1, 0.5, [] {}));
  ASSERT_TRUE(watch.stats().thread_up);
  const auto start = std::chrono::steady_clock::now();
  watch.end_if_idle();
  EXPECT_FALSE(watch.stats().thread_up) << "it returns once the thread has ended";
  EXPECT_LT(std::chrono::steady_clock::now() - start, kBound);
  const std::uint64_t on = watch.watch(10s, 0.1, 0.5, [] {});
  watch.end_if_idle();
  EXPECT_TRUE(watch.stats().thread_up) << "a watch is on: the thread stays";
  watch.unwatch(on);
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready) << "the next watch starts it again";
  EXPECT_TRUE(watch.unwatch(id));
}

TEST(WaitWatch, CloseLeavesPendingWatchesUnfiredAndIsIdempotent) {
  std::atomic<int> calls{0};
  {
    WaitWatch watch;
    watch.watch(1s, 0.1, 0.5, [&] { ++calls; });
    watch.close();
    EXPECT_EQ(watch.watch(kAfter, 0.1, 0.5, [&] { ++calls; }), 0U) << "closed: no new watch";
    watch.close();
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(WaitWatch, ManyThreadsWatchAtOnce) {
  WaitWatch watch;
  std::atomic<int> fired{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::promise<void> told;
        std::future<void> done = told.get_future();
        std::atomic<bool> once{false};
        // The others keep the process busy: only the thread's own CPU time is looked at.
        const std::uint64_t id = watch.watch(kAfter, 0.1, 1e9, [&] {
          if (!once.exchange(true)) told.set_value();
        });
        // Half wait (and are told), half end their watch at once. Either way the callback
        // is over once unwatch returns: the promise may go.
        if (t % 2 == 0 && done.wait_for(kBound) == std::future_status::ready) ++fired;
        watch.unwatch(id);
      }
    });
  }
  threads.clear();
  EXPECT_EQ(fired.load(), 4 * 20);
}

TEST(WaitWatch, AForkedChildWatchesWithAThreadOfItsOwn) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start a thread in a child forked with threads";
#endif
  WaitWatch watch;
  {  // the parent's thread is up, and has run: not half started when the process forks
    // (a thread starting under AddressSanitizer holds its locks, and the child's new
    // thread then never ran: 3 runs in 12 of this test alone)
    std::promise<void> told;
    std::future<void> fired = told.get_future();
    const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
    ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready);
    ASSERT_TRUE(watch.unwatch(id));
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::promise<void> told;
    std::future<void> fired = told.get_future();
    const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
    const bool ok = fired.wait_for(kBound) == std::future_status::ready && watch.unwatch(id);
    ::_exit(ok && watch.stats().threads_started == 2 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { told.set_value(); });
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready) << "the parent's watcher still works";
  EXPECT_TRUE(watch.unwatch(id));
}

TEST(WaitWatch, AThreadKeptFromACoreIsNotTakenForWaiting) {
  // A thread that computes while another process takes its core has a CPU clock that
  // stands still, as if it waited: here it shares one CPU at nice 19 with a child that
  // spins at nice 0, and so gets ~1.5% of it.
  cpu_set_t all;
  ASSERT_EQ(::sched_getaffinity(0, sizeof all, &all), 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &all)) ++cpu;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  const pid_t spinner = ::fork();
  ASSERT_GE(spinner, 0);
  if (spinner == 0) {
    ::sched_setaffinity(0, sizeof one, &one);
    for (;;) {
    }
  }
  WaitWatch watch;
  std::atomic<int> calls{0};
  std::thread starved([&] {
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19), 0);
    const auto polls = watch.stats().polls;
    const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, [&] { ++calls; });
    compute_until_looked_at(watch, polls + 4);  // five looks, each over a span of ~1.5% CPU
    EXPECT_FALSE(watch.unwatch(id));
  });
  starved.join();
  ::kill(spinner, SIGKILL);
  ::waitpid(spinner, nullptr, 0);
  EXPECT_EQ(calls.load(), 0) << "a thread kept from its core was taken for waiting";
}

TEST(WaitWatch, UnwatchTellsTheTruthEvenWhileTheWatchIsLookedAt) {
  // unwatch() is true exactly when the callback ran: never false for one that runs later.
  // Four threads end their watches at times spread over the judging look (2.25 ms in),
  // when the watcher reads the watched thread's clocks and /proc without its lock.
  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  WaitWatch watch;
  std::vector<std::atomic<bool>> ran(kThreads * kRounds);
  std::vector<char> said(kThreads * kRounds, 0);
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const int i = t * kRounds + r;
        const auto start = std::chrono::steady_clock::now();
        const std::uint64_t id = watch.watch(2ms, 0.1, 0.5, [&ran, i] { ran[i] = true; });
        ASSERT_NE(id, 0U);
        // This thread waits (what is watched for) until 1.9 to 2.6 ms in, then ends it.
        std::this_thread::sleep_until(start + 1900us + std::chrono::microseconds((r * 37 + t * 11) % 700));
        said[i] = watch.unwatch(id) ? 1 : 0;
      }
    });
  }
  threads.clear();  // joins
  watch.close();    // no callback runs after this
  int fired = 0;
  for (int i = 0; i < kThreads * kRounds; ++i) {
    EXPECT_EQ(ran[i].load(), said[i] == 1) << "watch " << i;
    fired += said[i];
  }
  EXPECT_GT(fired, 0) << "some watches were ended after they fired";
}

TEST(WaitWatch, AComputingThreadMeetsItsHookUntilTheHookHasEnough) {
  WaitWatch watch;
  std::atomic<int> hooked{0};
  std::atomic<int> fired{0};
  const std::uint64_t id = watch.watch(
      kAfter, 0.1, 0.5, [&] { ++fired; }, [&] { return hooked.fetch_add(1) + 1 < 2; });
  ASSERT_NE(id, 0U);
  const auto start = std::chrono::steady_clock::now();
  while (hooked.load() < 2) {  // computing: the counting look and the next one call it
    ASSERT_LT(std::chrono::steady_clock::now() - start, kBound);
  }
  const auto polls = watch.stats().polls;
  compute_until_looked_at(watch, polls + 1);  // two more computing looks
  EXPECT_FALSE(watch.unwatch(id));
  EXPECT_EQ(hooked.load(), 2) << "the hook said it had enough";
  EXPECT_EQ(fired.load(), 0);
}

TEST(WaitWatch, AWaitingThreadNeverMeetsTheHook) {
  WaitWatch watch;
  std::promise<void> told;
  std::future<void> fired = told.get_future();
  std::atomic<int> hooked{0};
  const std::uint64_t id = watch.watch(
      kAfter, 0.1, 0.5, [&] { told.set_value(); }, [&] { ++hooked; return true; });
  ASSERT_EQ(fired.wait_for(kBound), std::future_status::ready);
  EXPECT_TRUE(watch.unwatch(id));
  // The counting look, kAfter / 8 in, may find the work a sanitizer makes a thread do
  // right after it asks to be watched; no look after it finds this thread computing.
  EXPECT_LE(hooked.load(), 1);
}

TEST(WaitWatch, UnwatchWaitsForAHookThatRuns) {
  // The auto lane's hook waits for the GIL: once unwatch() returns, it must be over.
  WaitWatch watch;
  std::promise<void> entered;
  std::future<void> in_hook = entered.get_future();
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<bool> finished{false};
  std::atomic<int> hooked{0};
  const std::uint64_t id = watch.watch(kAfter, 0.1, 0.5, nullptr, [&] {
    if (hooked.fetch_add(1) == 0) {
      entered.set_value();
      open.wait_for(kBound);
      finished = true;
    }
    return true;
  });
  ASSERT_NE(id, 0U);
  const auto start = std::chrono::steady_clock::now();
  while (in_hook.wait_for(0s) != std::future_status::ready) {  // computing until it runs
    ASSERT_LT(std::chrono::steady_clock::now() - start, kBound);
  }
  std::jthread opener([&] { gate.set_value(); });  // lets the hook end, a little later
  EXPECT_FALSE(watch.unwatch(id));
  EXPECT_TRUE(finished.load()) << "unwatch() returned while the hook still ran";
  const int calls = hooked.load();
  const auto polls = watch.stats().polls;
  const std::uint64_t next = watch.watch(kAfter, 0.1, 0.5, nullptr);  // the watcher goes on
  compute_until_looked_at(watch, polls + 1);
  watch.unwatch(next);
  EXPECT_EQ(hooked.load(), calls) << "a hook ran after its watch ended";
}
