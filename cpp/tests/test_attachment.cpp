// cpp/tests/test_attachment.cpp
// Attachment: buffers packed into a memfd, mapped privately, sent beside frames, checked on arrival.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "multilane/attachment.hpp"
#include "multilane/link.hpp"
#include "multilane/platform.hpp"
#include "test_support.hpp"

using namespace multilane;
using namespace std::chrono_literals;
using multilane::test::ChannelPair;
using multilane::test::pattern;

namespace {

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {}));
}

std::vector<std::byte> bytes(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

Attachment pack(Arena& arena, const std::vector<std::vector<std::byte>>& buffers) {
  std::vector<std::span<const std::byte>> spans(buffers.begin(), buffers.end());
  return arena.pack(spans);
}

/// Keeps no free block, so descriptor counts go back to where they were.
Arena& test_arena() {
  static Arena arena(0);
  return arena;
}

Attachment pack(const std::vector<std::vector<std::byte>>& buffers) { return pack(test_arena(), buffers); }

/// What a receiving process gets: the same memfd behind a new descriptor.
Attachment receive(const Attachment& sent) {
  sent.note_sent();
  return Attachment(::dup(sent.fd()));
}

/// A memfd holding `raw` bytes, as a peer (or an attacker) might send.
int raw_memfd(const std::vector<std::uint64_t>& raw, std::size_t size) {
  const int fd = platform::memfd("test", size);
  void* map = platform::map_shared(fd, size);
  std::memcpy(map, raw.data(), std::min(size, raw.size() * sizeof(std::uint64_t)));
  platform::unmap(map, size);
  return fd;
}

constexpr std::uint64_t kMagic = 0x48434154'54414c4dULL;

}  // namespace

TEST(Attachment, EveryBufferSizeRoundTripsPageAligned) {
  const std::vector<std::size_t> sizes = {0, 1, 4095, 4096, 4097, 3, 1 << 20, 0, 12345};
  std::vector<std::vector<std::byte>> buffers;
  for (std::size_t i = 0; i < sizes.size(); ++i) buffers.push_back(pattern(sizes[i], static_cast<unsigned>(i)));
  const Attachment a = pack(buffers);
  ASSERT_EQ(a.count(), sizes.size());
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  EXPECT_EQ(a.payload_bytes(), total);
  const AttachmentMap map(a);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(bytes(map.buffer(i)), buffers[i]) << "buffer " << i;
    if (sizes[i] != 0) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(map.buffer(i).data()) % 4096, 0U);
  }
  EXPECT_THROW((void)map.buffer(sizes.size()), std::out_of_range);
}

TEST(Attachment, NoBuffersIsValid) {
  const Attachment a = test_arena().pack({});
  EXPECT_EQ(a.count(), 0U);
  const AttachmentMap map(a);
  EXPECT_EQ(map.count(), 0U);
}

TEST(Attachment, WritesThroughOneMappingReachNobodyElse) {
  const Attachment a = pack({pattern(10000, 1)});
  const AttachmentMap first(a);
  const AttachmentMap second(a);
  std::memset(first.buffer(0).data(), 0, 10000);
  EXPECT_EQ(bytes(second.buffer(0)), pattern(10000, 1));
  const Attachment reread = receive(a);  // the memfd itself is untouched too
  EXPECT_EQ(bytes(AttachmentMap(reread).buffer(0)), pattern(10000, 1));
}

TEST(Attachment, AMappingOutlivesItsAttachmentAndNothingLeaks) {
  const std::size_t before = open_fds();
  std::unique_ptr<AttachmentMap> map;
  {
    const Attachment a = pack({pattern(5000, 2)});
    map = std::make_unique<AttachmentMap>(receive(a));
  }
  EXPECT_EQ(bytes(map->buffer(0)), pattern(5000, 2));
  map.reset();                      // releases the delivery...
  (void)test_arena().pack({});      // ...so the next pack sweeps the block out (no budget)
  EXPECT_EQ(open_fds(), before);
}

TEST(Attachment, AGarbledTableIsCorruptFrameAndClosesTheDescriptor) {
  const std::size_t before = open_fds();
  struct Case {
    const char* what;
    std::vector<std::uint64_t> raw;
    std::size_t size;
  };
  // {magic, count, outstanding, used, entries (offset, length)...}
  const std::vector<Case> cases = {
      {"too small", {kMagic}, 8},
      {"bad magic", {0x1234, 0, 0, 4096}, 4096},
      {"count beyond the file", {kMagic, 1'000'000, 0, 4096}, 4096},
      {"used beyond the file", {kMagic, 0, 0, 8192}, 4096},
      {"buffer past the end", {kMagic, 1, 0, 8192, 4096, 8192}, 8192},
      {"length overflows", {kMagic, 1, 0, 8192, 4096, ~0ULL}, 8192},
      {"buffer over the table", {kMagic, 1, 0, 4096, 8, 16}, 4096},
  };
  for (const Case& c : cases) {
    EXPECT_THROW(Attachment(raw_memfd(c.raw, c.size)), CorruptFrame) << c.what;
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(Attachment, TravelsBesideInlineAndBlobFramesInOrder) {
  constexpr std::size_t kCapacity = 1 << 16;
  constexpr std::size_t kInlineMax = kCapacity / 16;
  ChannelPair pair(kCapacity, kInlineMax);
  Channel& parent = pair.parent;
  Channel& worker = pair.worker;
  const std::size_t before = open_fds();
  {
    const Attachment a = pack({pattern(100000, 7), pattern(10, 8)});
    // Inline, blob, plain, attached again: the same attachment may be sent many times.
    ASSERT_TRUE(parent.try_send({1, 4, 0, 0}, pattern(10, 1), {&a, 1}));
    ASSERT_TRUE(parent.try_send({2, 4, 0, 0}, pattern(kInlineMax + 1, 2), {&a, 1}));
    ASSERT_TRUE(parent.try_send({3, 4, 0, 0}, pattern(5, 3)));
    ASSERT_TRUE(parent.try_send({4, 4, 0, 0}, pattern(kCapacity * 2, 4), {&a, 1}));
    Frame frame;
    for (std::uint64_t id = 1; id <= 4; ++id) {
      ASSERT_TRUE(worker.recv(frame, 5s));
      EXPECT_EQ(frame.header.task_id, id);
      EXPECT_EQ(frame.header.flags, 0U) << "channel flags must not leak to the receiver";
      EXPECT_EQ(frame.attachments.size(), id == 3 ? 0U : 1U);
      if (!frame.attachments.empty()) {
        const AttachmentMap map(frame.attachments[0]);
        EXPECT_EQ(bytes(map.buffer(0)), pattern(100000, 7));
        EXPECT_EQ(bytes(map.buffer(1)), pattern(10, 8));
      }
    }
  }
  EXPECT_EQ(open_fds(), before) << "every received and sent descriptor is closed";
}

TEST(Attachment, AFrameCarriesSeveralAttachmentsInOrder) {
  ChannelPair pair(1 << 16, 1 << 12);
  const std::size_t before = open_fds();
  {
    std::vector<Attachment> sent;
    for (unsigned i = 0; i < kMaxAttachments; ++i) sent.push_back(pack({pattern(5000 + i, i)}));
    ASSERT_TRUE(pair.parent.try_send({1, 4, 0, 0}, pattern(10, 1), sent));
    ASSERT_TRUE(pair.parent.try_send({2, 4, 0, 0}, pattern(1 << 13, 2), {sent.data() + 3, 2}));  // and a blob
    Frame frame;
    ASSERT_TRUE(pair.worker.recv(frame, 5s));
    ASSERT_EQ(frame.attachments.size(), kMaxAttachments);
    for (unsigned i = 0; i < kMaxAttachments; ++i) {
      const AttachmentMap map(frame.attachments[i]);
      EXPECT_EQ(bytes(map.buffer(0)), pattern(5000 + i, i)) << "attachment " << i;
    }
    ASSERT_TRUE(pair.worker.recv(frame, 5s));
    EXPECT_EQ(frame.payload, pattern(1 << 13, 2));
    ASSERT_EQ(frame.attachments.size(), 2U);
    EXPECT_EQ(bytes(AttachmentMap(frame.attachments[1]).buffer(0)), pattern(5004, 4));
    std::vector<Attachment> too_many(sent);
    too_many.push_back(sent[0]);
    EXPECT_THROW((void)pair.parent.try_send({3, 4, 0, 0}, {}, too_many), std::invalid_argument);
    const Attachment empty[1];
    EXPECT_THROW((void)pair.parent.try_send({3, 4, 0, 0}, {}, empty), std::invalid_argument);
    EXPECT_EQ(platform::recv_fd(pair.sockets[1], false), -1) << "a refused frame sent descriptors";
  }
  EXPECT_EQ(open_fds(), before) << "every received and sent descriptor is closed";
}

TEST(Attachment, AFullRingSendsNoDescriptor) {
  constexpr std::size_t kCapacity = 1 << 12;
  ChannelPair pair(kCapacity, 64);
  Channel& parent = pair.parent;
  Channel& worker = pair.worker;
  const Attachment a = pack({pattern(1000, 1)});
  std::uint64_t sent = 0;
  while (parent.try_send({sent + 1, 4, 0, 0}, pattern(60, 0), {&a, 1})) ++sent;
  ASSERT_GT(sent, 0U);
  Frame frame;
  std::uint64_t got = 0;
  while (worker.try_recv(frame)) {
    ++got;
    EXPECT_EQ(frame.attachments.size(), 1U);
  }
  EXPECT_EQ(got, sent);
  EXPECT_EQ(platform::recv_fd(pair.sockets[1], false), -1) << "the refused frame sent a descriptor";
}

TEST(Arena, ABlockIsReusedOnlyOnceEveryReceiverLetGo) {
  Arena arena(std::size_t{64} << 20);
  const std::vector<std::byte> data = pattern(1 << 20, 3);
  std::unique_ptr<AttachmentMap> held;
  {
    const Attachment a = pack(arena, {data});
    const Attachment received = receive(a);
    held = std::make_unique<AttachmentMap>(received);
  }
  // The sender dropped its handle, but a receiver still maps the block: not reusable.
  const Attachment b = pack(arena, {pattern(1 << 20, 4)});
  EXPECT_EQ(arena.stats().blocks_made, 2U);
  EXPECT_EQ(arena.stats().blocks_reused, 0U);
  EXPECT_EQ(bytes(held->buffer(0)), data) << "a block was rewritten under its receiver";
  held.reset();  // the receiver lets go: the first block is free again
  const Attachment c = pack(arena, {pattern(1 << 20, 5)});
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
  EXPECT_EQ(bytes(AttachmentMap(c).buffer(0)), pattern(1 << 20, 5));
}

TEST(Arena, AReceiptNeverMappedStillReleases) {
  Arena arena(std::size_t{64} << 20);
  { const Attachment received = receive(pack(arena, {pattern(5000, 1)})); }
  (void)pack(arena, {pattern(5000, 2)});
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
}

TEST(Arena, ATaintedBlockIsNeverReused) {
  Arena arena(std::size_t{64} << 20);
  {
    const Attachment a = pack(arena, {pattern(5000, 1)});
    a.note_sent();  // sent to a process that then died without releasing it
    a.taint();
  }
  (void)pack(arena, {pattern(5000, 2)});
  EXPECT_EQ(arena.stats().blocks_reused, 0U);
  EXPECT_EQ(arena.stats().blocks_made, 2U);
}

TEST(Arena, FreeBlocksAreKeptWithinTheBudgetAndSizedToFit) {
  Arena arena(std::size_t{3} << 20);
  const std::size_t before = open_fds();
  {
    const Attachment a = pack(arena, {pattern(1 << 20, 1)});
    const Attachment b = pack(arena, {pattern(4 << 20, 2)});
  }
  EXPECT_LE(arena.stats().free_bytes, std::size_t{3} << 20) << "over budget";
  EXPECT_EQ(open_fds(), before + 1) << "only the block within budget stays open";
  (void)pack(arena, {pattern(10, 3)});  // too small to pin a 1 MiB block? no: within 2x + 1 MiB
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
  (void)pack(arena, {pattern(8 << 20, 4)});  // bigger than any free block
  EXPECT_EQ(arena.stats().blocks_made, 3U);
  EXPECT_EQ(arena.stats().lent_blocks, 0U);
}

TEST(Arena, OverTheCountOfFreeBlocksTheSmallestGoNotALargeOne) {
  Arena arena(std::size_t{1} << 30);
  {
    std::vector<Attachment> small;
    for (std::size_t i = 0; i < Arena::kMaxFreeBlocks; ++i) small.push_back(pack(arena, {pattern(10, 1)}));
  }  // as many small blocks free as the arena keeps
  ASSERT_EQ(arena.stats().blocks_made, Arena::kMaxFreeBlocks);
  (void)pack(arena, {pattern(8 << 20, 2)});  // a large one comes back: one too many
  (void)pack(arena, {pattern(8 << 20, 3)});
  EXPECT_EQ(arena.stats().blocks_reused, 1U) << "the large block was kept, a small one dropped";
  EXPECT_EQ(arena.stats().blocks_made, Arena::kMaxFreeBlocks + 1);
}

TEST(Arena, ADeliveryToAReceiverThatDiedIsAbandonedNotReused) {
  Arena arena(std::size_t{64} << 20);
  auto received = std::make_unique<Attachment>(Attachment());
  std::unique_ptr<Delivery> delivery;
  {
    const Attachment a = pack(arena, {pattern(5000, 1)});
    *received = receive(a);  // the receiver holds it...
    delivery = std::make_unique<Delivery>(a);
  }
  EXPECT_FALSE(delivery->released());
  delivery->abandon();  // ...and dies: the block must not come back
  received->taint();    // (a receipt ignores taint)
  received.reset();     // what the kernel does for a dead receiver
  (void)pack(arena, {pattern(5000, 2)});
  EXPECT_EQ(arena.stats().blocks_reused, 0U);
  EXPECT_EQ(arena.stats().lent_blocks, 0U) << "the abandoned block is closed, not kept";
}

TEST(Arena, ADeliveryOfAReusedBlockCountsAsReleased) {
  Arena arena(std::size_t{64} << 20);
  std::unique_ptr<Delivery> first;
  {
    const Attachment a = pack(arena, {pattern(5000, 1)});
    { const Attachment received = receive(a); }
    first = std::make_unique<Delivery>(a);
  }
  EXPECT_TRUE(first->released());
  const Attachment again = pack(arena, {pattern(5000, 2)});  // the same block, reused
  ASSERT_EQ(arena.stats().blocks_reused, 1U);
  const Attachment held = receive(again);
  first->abandon();  // an old delivery must not taint the block's new life
  EXPECT_TRUE(first->released());
  EXPECT_FALSE(Delivery(again).released());
}

TEST(AttachmentReuse, AReleasedBlockArrivingAgainFindsItsMappingWithTheNewBytes) {
  AttachmentMap::drop_kept();
  Arena arena(std::size_t{64} << 20);  // keeps the block for the next pack
  const void* first_base = nullptr;
  {
    const Attachment sent = pack(arena, {pattern(300000, 1)});
    const AttachmentMap map(receive(sent));
    EXPECT_FALSE(map.reused());
    EXPECT_EQ(bytes(map.buffer(0)), pattern(300000, 1));
    first_base = map.buffer(0).data();
  }
  AttachmentMap::settle_kept();
  EXPECT_GT(AttachmentMap::kept_bytes(), 0U);
  // The same block, reused by the arena with other bytes and a smaller size.
  const Attachment sent = pack(arena, {pattern(200000, 2)});
  EXPECT_EQ(arena.stats().blocks_reused, 1U);
  const AttachmentMap map(receive(sent));
  EXPECT_TRUE(map.reused());
  EXPECT_EQ(map.buffer(0).data(), first_base);
  EXPECT_EQ(bytes(map.buffer(0)), pattern(200000, 2));
  EXPECT_EQ(AttachmentMap::kept_bytes(), 0U);  // taken while in use
}

TEST(AttachmentReuse, AMappingTheReceiverWroteIsNeverKept) {
  AttachmentMap::drop_kept();
  Arena arena(std::size_t{64} << 20);
  {
    const Attachment sent = pack(arena, {pattern(300000, 3)});
    const AttachmentMap map(receive(sent));
    map.buffer(0)[12345] = std::byte{0xEE};  // a private copy of that page, in this process
  }
  AttachmentMap::settle_kept();
  EXPECT_EQ(AttachmentMap::kept_bytes(), 0U);
  const Attachment sent = pack(arena, {pattern(300000, 4)});
  const AttachmentMap map(receive(sent));
  EXPECT_FALSE(map.reused());
  EXPECT_EQ(bytes(map.buffer(0)), pattern(300000, 4));  // no stale page
}

TEST(AttachmentReuse, KeptMappingsStayWithinTheirBoundAndCanBeDropped) {
  AttachmentMap::drop_kept();
  AttachmentMap::set_kept_bytes(std::size_t{1} << 20);
  Arena arena(std::size_t{64} << 20);
  for (unsigned i = 0; i < 4; ++i) {  // four live at once: four blocks
    std::vector<std::unique_ptr<AttachmentMap>> maps;
    std::vector<Attachment> sent;
    for (unsigned j = 0; j < 4; ++j) {
      sent.push_back(pack(arena, {pattern(500000, i * 4 + j)}));
      maps.push_back(std::make_unique<AttachmentMap>(receive(sent.back())));
    }
    maps.clear();
    AttachmentMap::settle_kept();
    EXPECT_LE(AttachmentMap::kept_bytes(), std::size_t{1} << 20);
  }
  EXPECT_GT(AttachmentMap::kept_bytes(), 0U);
  AttachmentMap::drop_kept();
  EXPECT_EQ(AttachmentMap::kept_bytes(), 0U);
  AttachmentMap::set_kept_bytes(std::size_t{1} << 30);
}

TEST(AttachmentReuse, LargeBuffersAreCopiedInPartsExactly) {
  // Above 16 MB the copy into the block is split between threads: every byte, every
  // seam between the parts, and an odd length must come out right.
  const std::size_t n = (std::size_t{40} << 20) + 4093;
  const std::vector<std::byte> data = pattern(n, 9);
  const Attachment a = pack({data, pattern(100, 10)});
  const AttachmentMap map(a);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), map.buffer(0).begin()));
  EXPECT_EQ(bytes(map.buffer(1)), pattern(100, 10));
}
