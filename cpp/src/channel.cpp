// cpp/src/channel.cpp
// Channel: frames through the ring, large payloads as blobs in arena blocks over the socket.
#include "multilane/channel.hpp"

#include <unistd.h>

#include <cstring>
#include <string>

#include "multilane/platform.hpp"

namespace multilane {

namespace {
std::span<const std::byte> bytes_of(const FrameHeader& header) {
  return {reinterpret_cast<const std::byte*>(&header), sizeof header};
}

/// For channels given no arena: blocks that are never kept for reuse.
Arena& unpooled_arena() {
  static auto* arena = new Arena(0);  // never destroyed: blocks may come back at exit
  return *arena;
}

}  // namespace

bool Channel::send_blob(const FrameHeader& header, std::span<const std::byte> payload, Attachment* blob_out) {
  // The descriptor must only be sent once the announcing frame is sure to fit, or the
  // receiver would pair it with the wrong frame. We are the only producer, so room that
  // exists now still exists after send_fd.
  const std::uint64_t length = payload.size();
  if (Ring::footprint(sizeof header + sizeof length) > tx_.capacity() - tx_.used()) return false;
  const std::span<const std::byte> buffers[] = {payload};
  Attachment blob = (arena_ != nullptr ? *arena_ : unpooled_arena()).pack(buffers);
  blob.note_sent();  // before the receiver can possibly release it
  try {
    platform::send_fd(socket_, blob.fd());
  } catch (...) {
    blob.taint();  // its count can no longer reach zero: never reuse the block
    throw;
  }
  FrameHeader announce = header;
  announce.flags |= kFlagBlob;
  const bool pushed = tx_.try_push(bytes_of(announce), {reinterpret_cast<const std::byte*>(&length), sizeof length});
  if (!pushed) throw CorruptFrame("ring lost room it had for a blob frame (two producers?)");
  if (blob_out != nullptr) *blob_out = std::move(blob);
  return true;
}

std::size_t Channel::in_ring(std::size_t payload_size) const noexcept {
  // The frame as it will sit in the ring: a blob only puts its 8-byte length there.
  return sizeof(FrameHeader) + (payload_size > inline_max_ ? sizeof(std::uint64_t) : payload_size);
}

bool Channel::send_attached(const FrameHeader& header, std::span<const std::byte> payload,
                            std::span<const Attachment> attachments, Attachment* blob) {
  if (attachments.size() > kMaxAttachments) {
    throw std::invalid_argument("a frame carries at most " + std::to_string(kMaxAttachments) + " attachments");
  }
  int fds[kMaxAttachments];
  for (std::size_t i = 0; i < attachments.size(); ++i) {
    if (attachments[i].empty()) throw std::invalid_argument("cannot send an empty attachment");
    fds[i] = attachments[i].fd();
  }
  // As for blobs: the descriptors go first, and only once the frame is sure to fit.
  if (Ring::footprint(in_ring(payload.size())) > tx_.capacity() - tx_.used()) return false;
  for (const Attachment& a : attachments) a.note_sent();  // before the receiver can possibly release it
  try {
    platform::send_fds(socket_, {fds, attachments.size()});
  } catch (...) {
    for (const Attachment& a : attachments) a.taint();  // its count can no longer reach zero: never reuse it
    throw;
  }
  FrameHeader attached = header;
  attached.flags |= kFlagAttachment;
  const bool sent = payload.size() > inline_max_ ? send_blob(attached, payload, blob)
                                                 : tx_.try_push(bytes_of(attached), payload);
  if (!sent) throw CorruptFrame("ring lost room it had for an attached frame (two producers?)");
  return true;
}

bool Channel::try_send(const FrameHeader& header, std::span<const std::byte> payload,
                       std::span<const Attachment> attachments, Attachment* blob) {
  if (header.flags & kChannelFlags) throw std::invalid_argument("the top two flag bits are reserved for the channel");
  if (!attachments.empty()) return send_attached(header, payload, attachments, blob);
  if (payload.size() > inline_max_) return send_blob(header, payload, blob);
  return tx_.try_push(bytes_of(header), payload);
}

bool Channel::send(const FrameHeader& header, std::span<const std::byte> payload, std::chrono::nanoseconds timeout,
                   SpinPolicy policy, std::span<const Attachment> attachments) {
  const std::size_t in_ring_size = in_ring(payload.size());
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (;;) {
    if (try_send(header, payload, attachments)) return true;
    std::chrono::nanoseconds left{-1};
    if (timeout.count() >= 0) {
      left = timeout - std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      if (left.count() <= 0) return false;
    }
    if (!tx_.wait_for_room(in_ring_size, left, policy)) return false;
  }
}

void Channel::finish_recv(Frame& out) {
  out.header = decode_header(scratch_);
  out.attachments.clear();
  if (out.header.flags & kFlagAttachment) {
    const std::vector<int> fds = platform::recv_fds(socket_, false);
    if (fds.empty()) throw CorruptFrame("attached frame arrived without its descriptors");
    out.attachments.reserve(fds.size());
    std::size_t adopted = 0;
    try {
      for (; adopted < fds.size(); ++adopted) {
        out.attachments.emplace_back(fds[adopted]);  // checks the table; closes fd if it is not valid
      }
    } catch (...) {
      for (std::size_t i = adopted + 1; i < fds.size(); ++i) platform::close_fd(fds[i]);
      out.attachments.clear();
      throw;
    }
    out.header.flags &= ~kFlagAttachment;
  }
  const std::span<const std::byte> rest{scratch_.data() + sizeof(FrameHeader), scratch_.size() - sizeof(FrameHeader)};
  if ((out.header.flags & kFlagBlob) == 0) {
    out.payload.assign(rest.begin(), rest.end());
    return;
  }
  std::uint64_t length = 0;
  if (rest.size() != sizeof length) throw CorruptFrame("blob frame without a length");
  std::memcpy(&length, rest.data(), sizeof length);
  const int fd = platform::recv_fd(socket_, false);
  if (fd < 0) throw CorruptFrame("blob frame arrived without its descriptor");
  const Attachment blob(fd);  // checks the table; closes fd if it is not valid
  if (blob.count() != 1 || blob.entries()[0].length != length) {
    throw CorruptFrame("blob size does not match its frame");
  }
  const AttachmentMap map(blob);  // released (and its mapping kept) once copied out
  const std::span<const std::byte> bytes = map.buffer(0);
  out.payload.assign(bytes.begin(), bytes.end());
  out.header.flags &= ~kFlagBlob;
}

bool Channel::try_recv(Frame& out) {
  if (!rx_.try_pop(scratch_)) return false;
  finish_recv(out);
  return true;
}

bool Channel::recv(Frame& out, std::chrono::nanoseconds timeout, SpinPolicy policy) {
  if (!rx_.pop(scratch_, timeout, policy)) return false;
  finish_recv(out);
  return true;
}

}  // namespace multilane
