// cpp/tests/test_channel.cpp
// Channel: inline frames and blobs, in order, across the inline threshold and beyond the ring.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "multilane/link.hpp"
#include "multilane/platform.hpp"
#include "test_support.hpp"

using namespace multilane;
using namespace std::chrono_literals;
using multilane::test::ChannelPair;
using multilane::test::pattern;

TEST(Channel, InlineAndBlobFramesArriveInOrder) {
  constexpr std::size_t kCapacity = 1 << 16;
  constexpr std::size_t kInlineMax = kCapacity / 16;
  ChannelPair pair(kCapacity, kInlineMax);
  Channel& parent = pair.parent;
  Channel& worker = pair.worker;

  const std::vector<std::size_t> sizes = {0, 1, kInlineMax - 1, kInlineMax, kInlineMax + 1, 5 << 20, 3, kCapacity * 2};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const FrameHeader header{i + 1, 4, 0, 100 + i};
    ASSERT_TRUE(parent.try_send(header, pattern(sizes[i], static_cast<unsigned>(i)))) << sizes[i];
  }
  Frame frame;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(worker.recv(frame, 5s));
    EXPECT_EQ(frame.header.task_id, i + 1);
    EXPECT_EQ(frame.header.aux, 100 + i);
    EXPECT_EQ(frame.header.flags, 0U) << "the blob flag must not leak to the receiver";
    EXPECT_EQ(frame.payload, pattern(sizes[i], static_cast<unsigned>(i))) << sizes[i];
  }
  EXPECT_FALSE(worker.try_recv(frame));
  // And back, worker to parent, with a blocking send.
  worker.send({9, 5, 0, 0}, pattern(3 << 20, 9), 5s);
  ASSERT_TRUE(parent.try_recv(frame));
  EXPECT_EQ(frame.payload, pattern(3 << 20, 9));
}

TEST(Channel, BlobsReuseTheSendersArenaBlocks) {
  constexpr std::size_t kCapacity = 1 << 16;
  ChannelPair pair(kCapacity, kCapacity / 16);
  Arena arena(std::size_t{64} << 20);
  pair.parent.use_arena(&arena);
  Frame frame;
  for (unsigned i = 0; i < 5; ++i) {
    Attachment blob;
    ASSERT_TRUE(pair.parent.try_send({i + 1, 4, 0, 0}, pattern(1 << 20, i), {}, &blob));
    EXPECT_FALSE(blob.empty()) << "the sender is handed the blob's block";
    EXPECT_FALSE(Delivery(blob).released()) << "not received yet";
    ASSERT_TRUE(pair.worker.recv(frame, 5s));
    EXPECT_EQ(frame.payload, pattern(1 << 20, i)) << "a reused block carried stale bytes";
    EXPECT_TRUE(Delivery(blob).released()) << "the receiver releases a blob once copied out";
  }
  EXPECT_EQ(arena.stats().blocks_made, 1U);
  EXPECT_EQ(arena.stats().blocks_reused, 4U);
  // An inline payload hands over no block.
  Attachment none;
  ASSERT_TRUE(pair.parent.try_send({9, 4, 0, 0}, pattern(10, 1), {}, &none));
  EXPECT_TRUE(none.empty());
}

TEST(Channel, ABlobToAReceiverThatDiedIsNeverReused) {
  ChannelPair pair(1 << 16, 1 << 12);
  Arena arena(std::size_t{64} << 20);
  pair.parent.use_arena(&arena);
  std::unique_ptr<Delivery> delivery;
  {
    Attachment blob;
    ASSERT_TRUE(pair.parent.try_send({1, 4, 0, 0}, pattern(100000, 1), {}, &blob));
    delivery = std::make_unique<Delivery>(blob);
  }
  EXPECT_EQ(arena.stats().lent_blocks, 1U) << "the block waits for its receiver";
  delivery->abandon();  // the receiver died with the descriptor unread
  EXPECT_EQ(arena.stats().lent_blocks, 0U) << "an abandoned block is closed, not kept waiting";
  Attachment next;
  ASSERT_TRUE(pair.parent.try_send({2, 4, 0, 0}, pattern(100000, 2), {}, &next));
  EXPECT_EQ(arena.stats().blocks_reused, 0U) << "a block its receiver may still hold was rewritten";
}

TEST(Channel, ABlobWhoseBlockDoesNotMatchItsFrameIsCorrupt) {
  ChannelPair pair(1 << 16, 1 << 12);
  // Two buffers where one is announced: a peer that does not follow the protocol.
  Arena arena(0);
  const std::vector<std::byte> a = pattern(5000, 1);
  const std::span<const std::byte> two[] = {a, a};
  const Attachment wrong = arena.pack(two);
  wrong.note_sent();
  platform::send_fd(pair.sockets[0], wrong.fd());
  FrameHeader header{1, 4, kFlagBlob, 0};
  const std::uint64_t length = 5000;
  ASSERT_TRUE(pair.parent_ring().try_push({reinterpret_cast<const std::byte*>(&header), sizeof header},
                                          {reinterpret_cast<const std::byte*>(&length), sizeof length}));
  Frame frame;
  EXPECT_THROW((void)pair.worker.try_recv(frame), CorruptFrame);
}

TEST(Channel, ReservedFlagsAreRefused) {
  ChannelPair pair(1 << 12, 64);
  EXPECT_THROW((void)pair.parent.try_send({1, 4, kFlagBlob, 0}, {}), std::invalid_argument);
  EXPECT_THROW((void)pair.parent.try_send({1, 4, kFlagAttachment, 0}, {}), std::invalid_argument);
}

TEST(ShmRegion, SharedAcrossForkAndClosedOnDestruction) {
  const auto fds_before = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {});
  {
    ShmRegion region = ShmRegion::create(4096);
    static_cast<char*>(region.data())[0] = 'a';
    const pid_t child = fork();
    if (child == 0) {
      static_cast<char*>(region.data())[0] = 'b';
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_EQ(static_cast<char*>(region.data())[0], 'b');
    ShmRegion moved = std::move(region);
    EXPECT_FALSE(region.valid());
    EXPECT_TRUE(moved.valid());
  }
  const auto fds_after = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {});
  EXPECT_EQ(fds_before, fds_after);
}
