// cpp/tests/test_ring.cpp
// Ring: sizes, wrap-around, back-pressure, corruption, and 10 million frames between threads and processes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "multilane/ring.hpp"
#include "multilane/shm_region.hpp"
#include "test_support.hpp"

using namespace multilane;
using namespace std::chrono_literals;
using multilane::test::pattern;

namespace {

struct TestRing {
  explicit TestRing(std::size_t capacity)
      : region(ShmRegion::create(Ring::bytes_for(capacity))),
        producer(Ring::create(region.data(), capacity, &readable, &writable)),
        consumer(Ring::attach(region.data(), region.size(), &readable, &writable)) {}
  ShmRegion region;
  Doorbell readable;
  Doorbell writable;
  Ring producer;
  Ring consumer;
};


}  // namespace

TEST(Ring, RejectsBadCapacities) {
  EXPECT_THROW(Ring::bytes_for(0), std::invalid_argument);
  EXPECT_THROW(Ring::bytes_for(32), std::invalid_argument);
  EXPECT_THROW(Ring::bytes_for(100), std::invalid_argument);
  EXPECT_EQ(Ring::bytes_for(64), sizeof(RingHeader) + 64);
}

TEST(Ring, AttachRejectsMemoryThatIsNotARing) {
  std::vector<std::byte> junk(4096, std::byte{0x5a});
  EXPECT_THROW(Ring::attach(junk.data(), junk.size(), nullptr, nullptr), CorruptFrame);
}

TEST(Ring, EveryFrameSizeRoundTrips) {
  for (std::size_t capacity : {std::size_t{256}, std::size_t{4096}}) {
    TestRing ring(capacity);
    std::vector<std::byte> out;
    for (std::size_t size = 0; size <= ring.producer.max_frame(); ++size) {
      const auto frame = pattern(size, static_cast<unsigned>(size));
      ASSERT_TRUE(ring.producer.try_push(frame)) << "size " << size;
      ASSERT_TRUE(ring.consumer.try_pop(out)) << "size " << size;
      ASSERT_EQ(out, frame) << "size " << size;
    }
    EXPECT_FALSE(ring.consumer.try_pop(out));
  }
}

TEST(Ring, FrameThatCanNeverFitFailsAtOnceWithTheSizes) {
  TestRing ring(256);
  const auto big = pattern(ring.producer.max_frame() + 1, 1);
  try {
    (void)ring.producer.try_push(big);
    FAIL() << "expected FrameTooLarge";
  } catch (const FrameTooLarge& e) {
    EXPECT_STREQ(e.what(), "frame of 249 bytes can never fit in a ring whose largest frame is 248 bytes");
  }
  // push() with no timeout must not wait for room that can never come.
  EXPECT_THROW(ring.producer.push(big, {}, -1ns), FrameTooLarge);
  const auto huge = pattern(10000, 2);
  EXPECT_THROW((void)ring.producer.try_push(huge), FrameTooLarge);
}

TEST(Ring, WrapAroundKeepsPayloadsIntact) {
  TestRing ring(256);
  std::vector<std::byte> out;
  for (unsigned i = 0; i < 5000; ++i) {  // sizes chosen so frames straddle the end often
    const auto a = pattern(37 + i % 61, i);
    const auto b = pattern(i % 23, i + 1);
    ASSERT_TRUE(ring.producer.try_push(a));
    ASSERT_TRUE(ring.producer.try_push(b));
    ASSERT_TRUE(ring.consumer.try_pop(out));
    ASSERT_EQ(out, a);
    ASSERT_TRUE(ring.consumer.try_pop(out));
    ASSERT_EQ(out, b);
  }
}

TEST(Ring, TwoPartPushIsOneFrame) {
  TestRing ring(1024);
  const auto a = pattern(10, 1);
  const auto b = pattern(20, 2);
  ASSERT_TRUE(ring.producer.try_push(a, b));
  std::vector<std::byte> out;
  ASSERT_TRUE(ring.consumer.try_pop(out));
  std::vector<std::byte> joined(a);
  joined.insert(joined.end(), b.begin(), b.end());
  EXPECT_EQ(out, joined);
}

TEST(Ring, FullRingRefusesAndTimesOut) {
  TestRing ring(256);
  const auto frame = pattern(56, 3);  // footprint 64: four fill the ring
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring.producer.try_push(frame));
  EXPECT_FALSE(ring.producer.try_push(frame));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ring.producer.push(frame, {}, 50ms));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 45ms);
  EXPECT_LT(waited, 5s);
}

TEST(Ring, BlockedProducerResumesWhenConsumerPops) {
  TestRing ring(256);
  const auto frame = pattern(56, 4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring.producer.try_push(frame));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    EXPECT_TRUE(ring.producer.push(frame, {}, 10s));  // back-pressure: waits for room
    pushed = true;
  });
  std::vector<std::byte> out;
  ASSERT_TRUE(ring.consumer.pop(out, 10s));
  producer.join();
  EXPECT_TRUE(pushed);
  int left = 0;
  while (ring.consumer.try_pop(out)) ++left;
  EXPECT_EQ(left, 4);
}

TEST(Ring, PopTimesOutOnEmptyRing) {
  TestRing ring(256);
  std::vector<std::byte> out;
  EXPECT_FALSE(ring.consumer.pop(out, 20ms));
}

TEST(Ring, GarbageIsReportedNotRead) {
  TestRing ring(256);
  const auto frame = pattern(16, 5);
  ASSERT_TRUE(ring.producer.try_push(frame));
  auto* data = static_cast<std::byte*>(ring.region.data()) + sizeof(RingHeader);
  std::memset(data, 0xff, 8);  // a prefix whose check fails
  std::vector<std::byte> out;
  EXPECT_THROW((void)ring.consumer.try_pop(out), CorruptFrame);
  // A prefix that passes its check but claims more than the ring holds.
  TestRing other(256);
  ASSERT_TRUE(other.producer.try_push(frame));
  auto* p = static_cast<std::uint32_t*>(static_cast<void*>(static_cast<std::byte*>(other.region.data()) + sizeof(RingHeader)));
  p[0] = 200;
  p[1] = ~200U;
  EXPECT_THROW((void)other.consumer.try_pop(out), CorruptFrame);
  // Indices that contradict each other.
  TestRing third(256);
  auto* header = static_cast<RingHeader*>(third.region.data());
  header->tail.store(100000);
  EXPECT_THROW((void)third.consumer.try_pop(out), CorruptFrame);
}

TEST(Ring, MisalignedIndicesAreReportedOnBothSides) {
  // Found by fuzz/fuzz_ring.cpp: a head of capacity - 6 made the prefix copy run 2 bytes
  // past the buffer. The indices live in shared memory a peer can corrupt.
  std::vector<std::byte> out;
  TestRing consumer_side(256);
  auto* header = static_cast<RingHeader*>(consumer_side.region.data());
  header->head.store(250);
  header->tail.store(266);
  EXPECT_THROW((void)consumer_side.consumer.try_pop(out), CorruptFrame);
  TestRing producer_side(256);
  static_cast<RingHeader*>(producer_side.region.data())->tail.store(250);
  EXPECT_THROW((void)producer_side.producer.try_push(pattern(8, 1)), CorruptFrame);
  TestRing runaway(256);
  auto* h = static_cast<RingHeader*>(runaway.region.data());
  h->tail.store(4096);  // 16 rings ahead of head: the producer must not trust it either
  EXPECT_THROW((void)runaway.producer.try_push(pattern(300 - 8 - 100, 1)), CorruptFrame);
}

TEST(RingStress, TwoThreadsExchangeFramesWithChecksums) {
  const std::uint64_t frames = test::stress_frames();
  TestRing ring(1 << 16);
  std::thread producer([&] {
    std::vector<std::byte> frame;
    for (std::uint64_t i = 0; i < frames; ++i) {
      test::fill_frame(i, frame);
      ASSERT_TRUE(ring.producer.push(frame, {}, 30s));
    }
  });
  std::vector<std::byte> got, scratch;
  std::uint64_t bad = 0;
  for (std::uint64_t i = 0; i < frames; ++i) {
    ASSERT_TRUE(ring.consumer.pop(got, 30s)) << "frame " << i << " never came";
    if (!test::check_frame(i, got, scratch)) ++bad;
  }
  producer.join();
  EXPECT_EQ(bad, 0U);
}

TEST(RingStress, TwoProcessesExchangeFramesWithChecksums) {
  const std::uint64_t frames = test::stress_frames();
  // Doorbells must live in the shared region too, so they work across fork.
  struct Shared {
    Doorbell readable;
    Doorbell writable;
  };
  const std::size_t capacity = 1 << 16;
  ShmRegion region = ShmRegion::create(64 + Ring::bytes_for(capacity));
  auto* bells = new (region.data()) Shared{};
  void* ring_memory = static_cast<std::byte*>(region.data()) + 64;
  Ring producer = Ring::create(ring_memory, capacity, &bells->readable, &bells->writable);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Ring consumer = Ring::attach(ring_memory, region.size() - 64, &bells->readable, &bells->writable);
    std::vector<std::byte> got, scratch;
    for (std::uint64_t i = 0; i < frames; ++i) {
      if (!consumer.pop(got, 30s)) _exit(2);
      if (!test::check_frame(i, got, scratch)) _exit(3);
    }
    _exit(0);
  }
  std::vector<std::byte> frame;
  for (std::uint64_t i = 0; i < frames; ++i) {
    test::fill_frame(i, frame);
    ASSERT_TRUE(producer.push(frame, {}, 30s)) << "consumer stopped at frame " << i;
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: a frame never came, 3: a frame was corrupt";
}
