// cpp/include/multilane/attachment.hpp
// Attachment: large out-of-band buffers that travel beside a frame, in one memfd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace multilane {

/// Buffers packed into one anonymous memfd: a table at offset 0, then each buffer at a
/// page-aligned offset. The sender copies the buffers in once (`pack`); the descriptor
/// crosses to the receiver over the link's socket (SCM_RIGHTS), and the receiver maps it
/// (`AttachmentMap`) instead of copying. The kernel frees the memory when the last
/// descriptor and mapping are gone, so a process that dies holding one leaks nothing.
///
/// Owns its descriptor; move-only.
class Attachment {
 public:
  Attachment() = default;
  /// Adopts `fd`; throws CorruptFrame if the table in it is not valid.
  explicit Attachment(int fd);
  ~Attachment();
  Attachment(Attachment&& other) noexcept;
  Attachment& operator=(Attachment&& other) noexcept;
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

  /// Copies `buffers` into a new memfd.
  static Attachment pack(std::span<const std::span<const std::byte>> buffers);

  [[nodiscard]] bool empty() const noexcept { return fd_ < 0; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// Bytes of the memfd (table, padding and buffers).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Bytes of the buffers themselves.
  [[nodiscard]] std::size_t payload_bytes() const noexcept;
  [[nodiscard]] std::size_t count() const noexcept { return entries_.size(); }

  struct Entry {
    std::uint64_t offset;
    std::uint64_t length;
  };
  [[nodiscard]] const std::vector<Entry>& entries() const noexcept { return entries_; }

 private:
  int fd_ = -1;
  std::size_t size_ = 0;
  std::vector<Entry> entries_;
};

/// A private, copy-on-write mapping of an attachment: the receiver may read and write its
/// buffers; writes stay in this process (the sender and other receivers never see them).
/// Unmapped on destruction; outlives the Attachment it was made from.
class AttachmentMap {
 public:
  explicit AttachmentMap(const Attachment& attachment);
  ~AttachmentMap();
  AttachmentMap(const AttachmentMap&) = delete;
  AttachmentMap& operator=(const AttachmentMap&) = delete;

  [[nodiscard]] std::size_t count() const noexcept { return entries_.size(); }
  [[nodiscard]] std::span<std::byte> buffer(std::size_t index) const;

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  std::vector<Attachment::Entry> entries_;
};

}  // namespace multilane
