// cpp/tests/test_platform.cpp
// The platform seam's readings of this process's threads.
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <thread>

#include "multilane/platform.hpp"

using namespace multilane;

namespace {

std::int64_t own_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// Spins until this thread has used `ns` of CPU.
void spin_for_cpu(std::int64_t ns) {
  const std::int64_t start = own_cpu_ns();
  while (own_cpu_ns() - start < ns) {
  }
}

constexpr std::int64_t kSpinNs = 30'000'000;

}  // namespace

TEST(OtherThreadsCpu, CountsAnotherThreadsSpinToTheMillisecond) {
  std::atomic<bool> go{false};
  std::atomic<bool> spun{false};
  std::atomic<bool> leave{false};
  std::thread other([&] {
    go.wait(false);
    spin_for_cpu(kSpinNs);
    spun = true;
    spun.notify_all();
    leave.wait(false);  // still alive at the second reading
  });
  const std::int64_t before = platform::other_threads_cpu_ns();
  ASSERT_GE(before, 0);
  go = true;
  go.notify_all();
  spun.wait(false);
  const std::int64_t after = platform::other_threads_cpu_ns();
  leave = true;
  leave.notify_all();
  other.join();
  // All of the spin (not the tick-late count of the process clock), and little more.
  EXPECT_GE(after - before, kSpinNs);
  EXPECT_LT(after - before, kSpinNs + 100'000'000);
}

TEST(OtherThreadsCpu, LeavesTheCallingThreadOut) {
  std::atomic<bool> leave{false};
  std::thread idle([&] { leave.wait(false); });
  const std::int64_t before = platform::other_threads_cpu_ns();
  spin_for_cpu(kSpinNs);
  const std::int64_t after = platform::other_threads_cpu_ns();
  leave = true;
  leave.notify_all();
  idle.join();
  EXPECT_LT(after - before, kSpinNs / 3) << "the caller's own spin was counted";
}

TEST(Platform, ThreadStartedWhileSignalsBlockedInheritsTheMask) {
  sigset_t seen;
  {
    platform::SignalsBlocked blocked;
    std::thread([&seen] { pthread_sigmask(SIG_BLOCK, nullptr, &seen); }).join();
  }
  EXPECT_EQ(sigismember(&seen, SIGINT), 1);
  EXPECT_EQ(sigismember(&seen, SIGTERM), 1);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_EQ(sigismember(&now, SIGINT), 0);  // the caller's mask came back
}
