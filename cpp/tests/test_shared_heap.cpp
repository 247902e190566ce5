// cpp/tests/test_shared_heap.cpp
// SharedHeap: large allocations in arena blocks, shared without a copy, snapshot semantics, fork.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "multilane/platform.hpp"
#include "multilane/shared_heap.hpp"
#include "test_support.hpp"

using namespace multilane;

namespace {

constexpr std::size_t kMin = std::size_t{1} << 20;
constexpr std::size_t kPageSize = 4096;

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {}));
}

/// A fallback that counts what reaches it.
struct CountingFallback {
  static inline std::atomic<int> live{0};
  static void* counted(void* p) {
    if (p != nullptr) ++live;
    return p;
  }
  static CAllocator allocator() {
    CAllocator a = system_allocator();
    a.malloc = [](void*, std::size_t n) -> void* { return counted(std::malloc(n)); };
    a.calloc = [](void*, std::size_t c, std::size_t n) -> void* { return counted(std::calloc(c, n)); };
    a.realloc = [](void*, void* p, std::size_t n) -> void* {
      if (p == nullptr) return counted(std::realloc(p, n));
      return std::realloc(p, n);
    };
    a.free = [](void*, void* p, std::size_t) {
      if (p != nullptr) --live;
      std::free(p);
    };
    return a;
  }
};

/// What a receiving process does with a shared block: a new descriptor, mapped privately.
struct Receiver {
  Attachment receipt;
  std::unique_ptr<AttachmentMap> map;
  explicit Receiver(const Attachment& sent) {
    sent.note_sent();
    receipt = Attachment(::dup(sent.fd()));
    map = std::make_unique<AttachmentMap>(receipt);
  }
  [[nodiscard]] const std::byte* at(std::size_t offset) const { return map->buffer(0).data() + offset; }
};

void fill(void* p, std::size_t n, unsigned seed) {
  const auto v = test::pattern(n, seed);
  std::memcpy(p, v.data(), n);
}

bool holds(const void* p, std::size_t n, unsigned seed) {
  return std::memcmp(p, test::pattern(n, seed).data(), n) == 0;
}

struct HeapTest : ::testing::Test {
  Arena arena{std::size_t{64} << 20};
  SharedHeap heap{arena, {kMin, 16}, CountingFallback::allocator()};
  CAllocator c = heap.allocator();
  void TearDown() override { EXPECT_EQ(CountingFallback::live.load(), 0) << "the fallback leaked"; }
};

}  // namespace

TEST_F(HeapTest, SmallRequestsGoToTheFallbackLargeOnesToPageAlignedBlocks) {
  void* small = c.malloc(c.ctx, kMin - 1);
  void* large = c.malloc(c.ctx, kMin);
  EXPECT_EQ(CountingFallback::live.load(), 1);
  EXPECT_FALSE(heap.owns(small));
  EXPECT_TRUE(heap.owns(large));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(large) % kPageSize, 0U);
  fill(large, kMin, 1);
  EXPECT_TRUE(holds(large, kMin, 1));
  EXPECT_EQ(heap.stats().live_blocks, 1U);
  EXPECT_EQ(heap.stats().live_bytes, kMin);
  c.free(c.ctx, small, kMin - 1);
  c.free(c.ctx, large, kMin);
  EXPECT_EQ(heap.stats().live_blocks, 0U);
  EXPECT_EQ(heap.stats().allocations, 1U);
}

TEST_F(HeapTest, CallocIsZeroEvenInAReusedBlock) {
  void* a = c.malloc(c.ctx, 3 * kMin);
  fill(a, 3 * kMin, 7);
  c.free(c.ctx, a, 3 * kMin);
  auto* z = static_cast<unsigned char*>(c.calloc(c.ctx, 3 * kMin / 8, 8));
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
  EXPECT_TRUE(std::all_of(z, z + 3 * kMin, [](unsigned char b) { return b == 0; }));
  c.free(c.ctx, z, 3 * kMin);
  EXPECT_EQ(c.calloc(c.ctx, SIZE_MAX / 2, 4), nullptr) << "an overflowing size is refused";
}

TEST_F(HeapTest, ReallocKeepsTheBytesAcrossTheThreshold) {
  void* p = c.malloc(c.ctx, 1000);
  fill(p, 1000, 2);
  p = c.realloc(c.ctx, p, 1000);  // the fallback's pointer stays the fallback's
  EXPECT_FALSE(heap.owns(p));
  c.free(c.ctx, p, 1000);
  void* q = c.malloc(c.ctx, 2 * kMin);
  fill(q, 2 * kMin, 3);
  q = c.realloc(c.ctx, q, 4 * kMin);  // grows into a new block
  EXPECT_TRUE(heap.owns(q));
  EXPECT_TRUE(holds(q, 2 * kMin, 3));
  q = c.realloc(c.ctx, q, 100);  // shrinks out of the heap
  EXPECT_FALSE(heap.owns(q));
  EXPECT_TRUE(holds(q, 100, 3));
  c.free(c.ctx, q, 100);
  void* r = c.realloc(c.ctx, nullptr, kMin);  // realloc(NULL) is malloc
  EXPECT_TRUE(heap.owns(r));
  c.free(c.ctx, r, kMin);
  EXPECT_EQ(heap.stats().live_blocks, 0U);
}

TEST_F(HeapTest, AShareIsASnapshotTheSenderCannotChange) {
  auto* p = static_cast<std::byte*>(c.malloc(c.ctx, 2 * kMin));
  fill(p, 2 * kMin, 4);
  auto shared = heap.share(p + 100, kMin);
  ASSERT_TRUE(shared.has_value());
  EXPECT_EQ(shared->offset, 100U);
  const Receiver receiver(shared->block);
  EXPECT_TRUE(std::memcmp(receiver.at(100), p + 100, kMin) == 0);
  std::memset(p, 0xAB, 2 * kMin);  // the sender writes after the send...
  EXPECT_TRUE(holds(receiver.at(0), 2 * kMin, 4)) << "a sender's write reached its receiver";
  EXPECT_EQ(static_cast<unsigned char>(p[5]), 0xAB) << "...and its own array holds the write";
  EXPECT_FALSE(heap.share(p, kMin).has_value()) << "a written buffer is shared again";
  EXPECT_EQ(heap.stats().refused, 1U);
  c.free(c.ctx, p, 2 * kMin);
}

TEST_F(HeapTest, AnUnwrittenBufferIsSharedAgainAsItIs) {
  auto* p = static_cast<std::byte*>(c.malloc(c.ctx, 4 * kMin));
  fill(p, 4 * kMin, 5);
  auto first = heap.share(p, 4 * kMin);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(holds(p, 4 * kMin, 5)) << "reading after a share sees the same bytes";
  p[3 * kMin] = std::byte{1};  // a write outside the next buffer sent does not matter to it
  auto again = heap.share(p + kMin, kMin);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->block.fd(), first->block.fd()) << "the same block, not a copy";
  EXPECT_EQ(heap.stats().shares, 2U);
  EXPECT_EQ(heap.stats().snapshots, 1U);
  EXPECT_FALSE(heap.share(p + 2 * kMin, 2 * kMin).has_value()) << "this range holds the write";
  EXPECT_FALSE(heap.share(p + 3 * kMin, 2 * kMin).has_value()) << "past the allocation's end";
  int outside = 0;
  EXPECT_FALSE(heap.share(&outside, sizeof outside).has_value());
  c.free(c.ctx, p, 4 * kMin);
}

TEST_F(HeapTest, AFreedBlockIsReusedOnlyOnceItsReceiverLetGo) {
  auto* p = static_cast<std::byte*>(c.malloc(c.ctx, kMin));
  fill(p, kMin, 6);
  auto receiver = std::make_unique<Receiver>(heap.share(p, kMin)->block);
  c.free(c.ctx, p, kMin);
  auto* q = static_cast<std::byte*>(c.malloc(c.ctx, kMin));
  fill(q, kMin, 7);
  EXPECT_EQ(arena.stats().blocks_reused, 0U);
  EXPECT_TRUE(holds(receiver->at(0), kMin, 6)) << "a block was reused under its receiver";
  receiver.reset();
  c.free(c.ctx, q, kMin);
  auto* r = static_cast<std::byte*>(c.malloc(c.ctx, kMin));
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
  fill(r, kMin, 8);  // a reused block is mapped shared again: what is written reaches the file
  const Receiver next(heap.share(r, kMin)->block);
  EXPECT_TRUE(holds(next.at(0), kMin, 8));
  c.free(c.ctx, r, kMin);
}

TEST_F(HeapTest, OverMaxBlocksRequestsFallBack) {
  std::vector<void*> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(c.malloc(c.ctx, kMin));
  void* extra = c.malloc(c.ctx, kMin);
  EXPECT_FALSE(heap.owns(extra));
  EXPECT_EQ(heap.stats().declined, 1U);
  c.free(c.ctx, extra, kMin);
  for (void* b : blocks) c.free(c.ctx, b, kMin);
}

TEST_F(HeapTest, NothingLeaksOnceEverythingIsFreed) {
  Arena unkept(0);  // keeps no free block
  const std::size_t before = open_fds();
  {
    SharedHeap h(unkept, {kMin, 16});
    CAllocator a = h.allocator();
    void* p = a.malloc(a.ctx, 8 * kMin);
    {
      const Receiver r(h.share(p, 8 * kMin)->block);
      EXPECT_GT(open_fds(), before);
    }
    a.free(a.ctx, p, 8 * kMin);
  }
  EXPECT_EQ(open_fds(), before);
}

TEST_F(HeapTest, AForkedChildAndItsParentEachKeepTheirOwnBytes) {
  auto* p = static_cast<std::byte*>(c.malloc(c.ctx, 2 * kMin));
  fill(p, 2 * kMin, 9);
  int to_child[2];
  int to_parent[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(to_parent), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char go = 0;
    int failures = 0;
    std::memset(p, 0x11, kMin);  // the child writes first: the parent must not see it
    (void)!::write(to_parent[1], "w", 1);
    (void)!::read(to_child[0], &go, 1);  // the parent has written its half
    failures += holds(p + kMin, kMin, 9) ? 0 : 1;            // and the child must not see that
    failures += heap.share(p + kMin, kMin).has_value() ? 1 : 0;  // inherited: never sent from here
    void* mine = c.malloc(c.ctx, kMin);                      // a child's own allocation works
    failures += heap.owns(mine) ? 0 : 1;
    fill(mine, kMin, 10);
    failures += heap.share(mine, kMin).has_value() ? 0 : 1;
    c.free(c.ctx, mine, kMin);
    c.free(c.ctx, p, 2 * kMin);  // inherited: only unmapped here
    ::_exit(failures);
  }
  char done = 0;
  ASSERT_EQ(::read(to_parent[0], &done, 1), 1);
  EXPECT_TRUE(holds(p, 2 * kMin, 9)) << "the child's write reached its parent";
  std::memset(p + kMin, 0x22, kMin);
  ASSERT_EQ(::write(to_child[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed checks in the child";
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
  EXPECT_TRUE(holds(p, kMin, 9));
  EXPECT_FALSE(heap.share(p + kMin, kMin).has_value()) << "written since the fork made it private";
  EXPECT_TRUE(heap.share(p, kMin).has_value());
  c.free(c.ctx, p, 2 * kMin);
}

TEST_F(HeapTest, ManyThreadsAllocateShareAndFree) {
  std::vector<std::jthread> threads;
  std::atomic<int> failures{0};
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned i = 0; i < 50; ++i) {
        auto* p = static_cast<std::byte*>(c.malloc(c.ctx, kMin + i * kPageSize));
        p[0] = static_cast<std::byte>(t);
        p[kMin - 1] = static_cast<std::byte>(i);
        if (auto s = heap.share(p, kMin)) {
          const Receiver r(s->block);
          if (*r.at(0) != static_cast<std::byte>(t) || *r.at(kMin - 1) != static_cast<std::byte>(i)) ++failures;
        }
        c.free(c.ctx, p, kMin + i * kPageSize);
      }
    });
  }
  threads.clear();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(heap.stats().live_blocks, 0U);
}
