// cpp/include/multilane/channel.hpp
// Channel: one side of a link: a ring to send on, a ring to receive from, a socket for blobs.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <vector>

#include "multilane/attachment.hpp"
#include "multilane/frame.hpp"
#include "multilane/ring.hpp"

namespace multilane {

/// Sends and receives whole frames. A payload above `inline_max` bytes (a blob) does not go
/// through the ring: it is packed into a block of the sender's arena (`use_arena`; without
/// one, a block of its own) whose descriptor is passed over the socket (SCM_RIGHTS) before a
/// small frame announcing it is pushed, so any size fits and the ring stays small. The
/// receiver maps the block, copies the payload out and releases it at once. Arena blocks are
/// reused and receivers keep their mappings (see AttachmentMap), so a steady stream of blobs
/// faults no fresh pages: a 1 MB argument cost 2.3 ms in a fresh memfd each time.
///
/// One thread at a time may send and one (other) thread at a time may receive.
class Channel {
 public:
  Channel() = default;
  Channel(Ring tx, Ring rx, int socket_fd, std::size_t inline_max) noexcept
      : tx_(tx), rx_(rx), socket_(socket_fd), inline_max_(inline_max) {}

  /// Sends now or returns false if the ring has no room (never blocks). `attachments` (at
  /// most kMaxAttachments, none empty) travel with the frame (their descriptors are
  /// duplicated; the caller keeps them, so the same attachment can be sent again, to this
  /// receiver or another).
  /// If the payload went as a blob and `blob` is given, it receives the blob's block:
  /// whoever must clean up after a receiver that dies tracks it as a Delivery.
  [[nodiscard]] bool try_send(const FrameHeader& header, std::span<const std::byte> payload,
                              std::span<const Attachment> attachments = {}, Attachment* blob = nullptr);
  /// Sends, waiting while the ring is full (back-pressure). False after `timeout`.
  bool send(const FrameHeader& header, std::span<const std::byte> payload, std::chrono::nanoseconds timeout,
            SpinPolicy policy = {}, std::span<const Attachment> attachments = {});
  /// Receives one frame if one is waiting.
  [[nodiscard]] bool try_recv(Frame& out);
  /// Waits up to `timeout` (negative: forever) for a frame.
  bool recv(Frame& out, std::chrono::nanoseconds timeout, SpinPolicy policy = {});

  /// Blobs are packed into blocks of `arena` (borrowed: it must outlive the channel).
  void use_arena(Arena* arena) noexcept { arena_ = arena; }

  [[nodiscard]] bool readable() const noexcept { return rx_.readable(); }
  [[nodiscard]] std::size_t inline_max() const noexcept { return inline_max_; }

 private:
  [[nodiscard]] bool send_blob(const FrameHeader& header, std::span<const std::byte> payload, Attachment* blob);
  [[nodiscard]] bool send_attached(const FrameHeader& header, std::span<const std::byte> payload,
                                   std::span<const Attachment> attachments, Attachment* blob);
  [[nodiscard]] std::size_t in_ring(std::size_t payload_size) const noexcept;
  void finish_recv(Frame& out);

  Ring tx_;
  Ring rx_;
  int socket_ = -1;  // borrowed: the owner of the link closes it
  std::size_t inline_max_ = 0;
  Arena* arena_ = nullptr;
  std::vector<std::byte> scratch_;
};

}  // namespace multilane
