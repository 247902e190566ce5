// cpp/tests/test_doorbell.cpp
// Doorbell: sleeps on the futex, rings only for sleepers, never loses a wake-up.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "multilane/doorbell.hpp"

using namespace multilane;
using namespace std::chrono_literals;

TEST(Doorbell, RingWithoutSleepersIsFree) {
  Doorbell bell;
  bell.ring();
  EXPECT_EQ(bell.seq.load(), 0U);
}

TEST(Doorbell, WaitTimesOut) {
  Doorbell bell;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(bell.wait_until([] { return false; }, 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
}

TEST(Doorbell, SleeperIsWoken) {
  Doorbell bell;
  std::atomic<bool> flag{false};
  std::thread waiter([&] { EXPECT_TRUE(bell.wait_until([&] { return flag.load(); }, 10s, SpinPolicy{0ns})); });
  while (bell.sleepers.load() == 0) std::this_thread::yield();  // it is asleep on the futex
  flag = true;
  bell.ring();
  waiter.join();
  EXPECT_GE(bell.seq.load(), 1U);
}

TEST(Doorbell, NoLostWakeUpsInPingPong) {
  Doorbell ping, pong;
  std::atomic<std::uint64_t> ball{0};
  constexpr std::uint64_t kRounds = 100000;
  std::thread other([&] {
    for (std::uint64_t i = 1; i <= kRounds; i += 2) {
      ASSERT_TRUE(ping.wait_until([&] { return ball.load() == i; }, 10s, SpinPolicy{0ns})) << i;
      ball.store(i + 1);
      pong.ring();
    }
  });
  for (std::uint64_t i = 0; i < kRounds; i += 2) {
    ball.store(i + 1);
    ping.ring();
    ASSERT_TRUE(pong.wait_until([&] { return ball.load() == i + 2; }, 10s, SpinPolicy{0ns})) << i;
  }
  other.join();
}
