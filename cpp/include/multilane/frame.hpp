// cpp/include/multilane/frame.hpp
// Frame: the fixed header every message between parent and worker starts with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "multilane/attachment.hpp"

namespace multilane {

/// Message kinds. The core only moves frames; the meaning of each kind is the Python
/// protocol's (src/multilane/_protocol.py mirrors these numbers).
enum class FrameKind : std::uint32_t {
  kInit = 1,      // parent -> worker: settings, initializer (first frame a worker reads)
  kReady = 2,     // worker -> parent: initialised, or (flags=1) the initializer failed
  kFunction = 3,  // parent -> worker: a pickled function for id `aux`
  kCall = 4,      // parent -> worker: run function `aux` with the pickled arguments
  kResult = 5,    // worker -> parent: pickled return value of task `task_id`
  kError = 6,     // worker -> parent: pickled exception of task `task_id`
  kCancel = 7,    // parent -> worker: drop queued task `task_id` (reserved)
  kForget = 8,    // parent -> worker: drop function `aux` from the cache
  kShutdown = 9,  // parent -> worker: exit after the frames before this one
  kShared = 10,   // parent -> worker: the attachment holds shared region `aux`
  kForgetShared = 11,  // parent -> worker: drop shared region `aux`
};

/// Set in `flags` when the payload travels as a memfd over the link's socket; the ring then
/// carries only the payload's length (8 bytes).
inline constexpr std::uint32_t kFlagBlob = 1U << 31;
/// Set in `flags` when the descriptors of the frame's Attachments (1 to kMaxAttachments, in
/// one message) went over the socket before the frame.
inline constexpr std::uint32_t kFlagAttachment = 1U << 30;
/// The flags the channel owns; senders may not set them.
inline constexpr std::uint32_t kChannelFlags = kFlagBlob | kFlagAttachment;

struct FrameHeader {
  std::uint64_t task_id = 0;
  std::uint32_t kind = 0;
  std::uint32_t flags = 0;
  std::uint64_t aux = 0;
};
static_assert(sizeof(FrameHeader) == 24);

/// Most attachments one frame carries (their descriptors travel in one message).
inline constexpr std::size_t kMaxAttachments = 64;

struct Frame {
  FrameHeader header;
  std::vector<std::byte> payload;
  std::vector<Attachment> attachments;  // empty unless the sender attached buffers
};

/// Splits a raw ring frame into header and payload. Throws CorruptFrame if it is too short.
FrameHeader decode_header(std::span<const std::byte> raw);

}  // namespace multilane
