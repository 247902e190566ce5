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
using multilane::test::pattern;

namespace {

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {}));
}

std::vector<std::byte> bytes(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

Attachment pack(const std::vector<std::vector<std::byte>>& buffers) {
  std::vector<std::span<const std::byte>> spans(buffers.begin(), buffers.end());
  return Attachment::pack(spans);
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
  const Attachment a = Attachment::pack({});
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
  const Attachment reread(::dup(a.fd()));  // the memfd itself is untouched too
  EXPECT_EQ(bytes(AttachmentMap(reread).buffer(0)), pattern(10000, 1));
}

TEST(Attachment, AMappingOutlivesItsAttachmentAndNothingLeaks) {
  const std::size_t before = open_fds();
  std::unique_ptr<AttachmentMap> map;
  {
    const Attachment a = pack({pattern(5000, 2)});
    map = std::make_unique<AttachmentMap>(a);
  }
  EXPECT_EQ(open_fds(), before);
  EXPECT_EQ(bytes(map->buffer(0)), pattern(5000, 2));
}

TEST(Attachment, AGarbledTableIsCorruptFrameAndClosesTheDescriptor) {
  const std::size_t before = open_fds();
  struct Case {
    const char* what;
    std::vector<std::uint64_t> raw;
    std::size_t size;
  };
  const std::vector<Case> cases = {
      {"too small", {kMagic}, 8},
      {"bad magic", {0x1234, 0}, 4096},
      {"count beyond the file", {kMagic, 1'000'000}, 4096},
      {"buffer past the end", {kMagic, 1, 4096, 4096}, 4096},
      {"length overflows", {kMagic, 1, 4096, ~0ULL}, 8192},
      {"buffer over the table", {kMagic, 1, 8, 16}, 4096},
  };
  for (const Case& c : cases) {
    EXPECT_THROW(Attachment(raw_memfd(c.raw, c.size)), CorruptFrame) << c.what;
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(Attachment, TravelsBesideInlineAndBlobFramesInOrder) {
  constexpr std::size_t kCapacity = 1 << 16;
  constexpr std::size_t kInlineMax = kCapacity / 16;
  ShmRegion hub = create_hub_region();
  ShmRegion link = create_link_region(kCapacity, kInlineMax);
  int sockets[2];
  platform::socket_pair(sockets);
  Channel parent = parent_channel(link, hub_header(hub), sockets[0]);
  Channel worker = worker_channel(link, hub_header(hub), sockets[1]);
  const std::size_t before = open_fds();
  {
    const Attachment a = pack({pattern(100000, 7), pattern(10, 8)});
    // Inline, blob, plain, attached again: the same attachment may be sent many times.
    ASSERT_TRUE(parent.try_send({1, 4, 0, 0}, pattern(10, 1), &a));
    ASSERT_TRUE(parent.try_send({2, 4, 0, 0}, pattern(kInlineMax + 1, 2), &a));
    ASSERT_TRUE(parent.try_send({3, 4, 0, 0}, pattern(5, 3)));
    ASSERT_TRUE(parent.try_send({4, 4, 0, 0}, pattern(kCapacity * 2, 4), &a));
    Frame frame;
    for (std::uint64_t id = 1; id <= 4; ++id) {
      ASSERT_TRUE(worker.recv(frame, 5s));
      EXPECT_EQ(frame.header.task_id, id);
      EXPECT_EQ(frame.header.flags, 0U) << "channel flags must not leak to the receiver";
      EXPECT_EQ(frame.attachment.empty(), id == 3);
      if (!frame.attachment.empty()) {
        const AttachmentMap map(frame.attachment);
        EXPECT_EQ(bytes(map.buffer(0)), pattern(100000, 7));
        EXPECT_EQ(bytes(map.buffer(1)), pattern(10, 8));
      }
    }
  }
  EXPECT_EQ(open_fds(), before) << "every received and sent descriptor is closed";
  platform::close_fd(sockets[0]);
  platform::close_fd(sockets[1]);
}

TEST(Attachment, ReservedFlagIsRefused) {
  ShmRegion hub = create_hub_region();
  ShmRegion link = create_link_region(1 << 12, 64);
  int sockets[2];
  platform::socket_pair(sockets);
  Channel parent = parent_channel(link, hub_header(hub), sockets[0]);
  EXPECT_THROW((void)parent.try_send({1, 4, kFlagAttachment, 0}, {}), std::invalid_argument);
  platform::close_fd(sockets[0]);
  platform::close_fd(sockets[1]);
}

TEST(Attachment, AFullRingSendsNoDescriptor) {
  constexpr std::size_t kCapacity = 1 << 12;
  ShmRegion hub = create_hub_region();
  ShmRegion link = create_link_region(kCapacity, 64);
  int sockets[2];
  platform::socket_pair(sockets);
  Channel parent = parent_channel(link, hub_header(hub), sockets[0]);
  Channel worker = worker_channel(link, hub_header(hub), sockets[1]);
  const Attachment a = pack({pattern(1000, 1)});
  std::uint64_t sent = 0;
  while (parent.try_send({sent + 1, 4, 0, 0}, pattern(60, 0), &a)) ++sent;
  ASSERT_GT(sent, 0U);
  Frame frame;
  std::uint64_t got = 0;
  while (worker.try_recv(frame)) {
    ++got;
    EXPECT_FALSE(frame.attachment.empty());
  }
  EXPECT_EQ(got, sent);
  EXPECT_EQ(platform::recv_fd(sockets[1], false), -1) << "the refused frame sent a descriptor";
  platform::close_fd(sockets[0]);
  platform::close_fd(sockets[1]);
}
