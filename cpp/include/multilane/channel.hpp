// cpp/include/multilane/channel.hpp
// Channel: one side of a link: a ring to send on, a ring to receive from, a socket for blobs.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

#include "multilane/frame.hpp"
#include "multilane/ring.hpp"

namespace multilane {

/// Sends and receives whole frames. A payload above `inline_max` bytes does not go through
/// the ring: it is written to a fresh memfd whose descriptor is passed over the socket
/// (SCM_RIGHTS) before a small frame announcing it is pushed, so any size fits and the ring
/// stays small. The receiver maps the memfd, copies the payload out and closes it.
///
/// One thread at a time may send and one (other) thread at a time may receive.
class Channel {
 public:
  Channel() = default;
  Channel(Ring tx, Ring rx, int socket_fd, std::size_t inline_max) noexcept
      : tx_(tx), rx_(rx), socket_(socket_fd), inline_max_(inline_max) {}

  /// Sends now or returns false if the ring has no room (never blocks). A non-empty
  /// `attachment` travels with the frame (its descriptor is duplicated; the caller keeps
  /// it, so the same attachment can be sent again, to this receiver or another).
  [[nodiscard]] bool try_send(const FrameHeader& header, std::span<const std::byte> payload,
                              const Attachment* attachment = nullptr);
  /// Sends, waiting while the ring is full (back-pressure). False after `timeout`.
  bool send(const FrameHeader& header, std::span<const std::byte> payload, std::chrono::nanoseconds timeout,
            SpinPolicy policy = {}, const Attachment* attachment = nullptr);
  /// Receives one frame if one is waiting.
  [[nodiscard]] bool try_recv(Frame& out);
  /// Waits up to `timeout` (negative: forever) for a frame.
  bool recv(Frame& out, std::chrono::nanoseconds timeout, SpinPolicy policy = {});

  [[nodiscard]] bool readable() const noexcept { return rx_.readable(); }
  [[nodiscard]] std::size_t inline_max() const noexcept { return inline_max_; }

 private:
  [[nodiscard]] bool send_blob(const FrameHeader& header, std::span<const std::byte> payload);
  [[nodiscard]] bool send_attached(const FrameHeader& header, std::span<const std::byte> payload,
                                   const Attachment& attachment);
  [[nodiscard]] std::size_t in_ring(std::size_t payload_size) const noexcept;
  void finish_recv(Frame& out);

  Ring tx_;
  Ring rx_;
  int socket_ = -1;  // borrowed: the owner of the link closes it
  std::size_t inline_max_ = 0;
  std::vector<std::byte> scratch_;
};

}  // namespace multilane
