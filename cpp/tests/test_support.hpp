// cpp/tests/test_support.hpp
// Test helpers: payload patterns, the stress frame count (env MULTILANE_STRESS_FRAMES), frame contents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "multilane/link.hpp"
#include "multilane/platform.hpp"

namespace multilane::test {

/// A parent's and a worker's channel over one link and socket pair, as a hub and its
/// worker hold them; the sockets are closed on destruction, even after a failed ASSERT.
struct ChannelPair {
  ShmRegion hub = create_hub_region();
  ShmRegion link;
  int sockets[2] = {-1, -1};
  Channel parent;
  Channel worker;

  ChannelPair(std::size_t capacity, std::size_t inline_max) : link(create_link_region(capacity, inline_max)) {
    platform::socket_pair(sockets);
    parent = parent_channel(link, hub_header(hub), sockets[0]);
    worker = worker_channel(link, hub_header(hub), sockets[1]);
  }
  /// The parent-to-worker ring itself, to push frames the channel would never make.
  [[nodiscard]] Ring parent_ring() const {
    auto* header = link_header(link);
    auto* base = static_cast<std::byte*>(link.data());
    const std::size_t at = LinkLayout::of(header->ring_capacity).to_worker;
    return Ring::attach(base + at, link.size() - at, &header->to_worker, nullptr);
  }
  ~ChannelPair() {
    platform::close_fd(sockets[0]);
    platform::close_fd(sockets[1]);
  }
  ChannelPair(const ChannelPair&) = delete;
  ChannelPair& operator=(const ChannelPair&) = delete;
};

/// `n` bytes whose values depend on `seed`, to check payloads arrive intact.
inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + seed) & 0xff);
  return v;
}

inline std::uint64_t stress_frames() {
  const char* env = std::getenv("MULTILANE_STRESS_FRAMES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10'000'000ULL;
}

/// Frame `i`: a size from 0 to 200 bytes and contents derived from `i`, so the consumer can
/// check every frame arrives whole and in order.
inline void fill_frame(std::uint64_t i, std::vector<std::byte>& out) {
  const std::size_t size = static_cast<std::size_t>((i * 2654435761ULL) % 201);
  out.resize(size);
  for (std::size_t k = 0; k < size; ++k) out[k] = static_cast<std::byte>((i + k * 31) & 0xff);
}

inline bool check_frame(std::uint64_t i, const std::vector<std::byte>& got, std::vector<std::byte>& scratch) {
  fill_frame(i, scratch);
  return got == scratch;
}

}  // namespace multilane::test
