// cpp/src/attachment.cpp
// Attachment: pack buffers into a memfd, read and check its table, map it privately.
#include "multilane/attachment.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "multilane/platform.hpp"
#include "multilane/ring.hpp"

namespace multilane {

namespace {

constexpr std::uint64_t kMagic = 0x48434154'54414c4dULL;  // "MLATTACH", little-endian
constexpr std::size_t kPage = 4096;

struct TableHeader {
  std::uint64_t magic;
  std::uint64_t count;
};

constexpr std::size_t align_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

std::size_t table_bytes(std::size_t count) {
  return sizeof(TableHeader) + count * sizeof(Attachment::Entry);
}

}  // namespace

Attachment::Attachment(int fd) : fd_(fd) {
  try {
    size_ = platform::file_size(fd);
    TableHeader header{};
    if (size_ < sizeof header) throw CorruptFrame("attachment smaller than its table");
    platform::read_at(fd, &header, sizeof header, 0);
    if (header.magic != kMagic) throw CorruptFrame("attachment without its table");
    if (header.count > (size_ - sizeof header) / sizeof(Entry)) throw CorruptFrame("attachment table too long");
    entries_.resize(header.count);
    if (header.count) platform::read_at(fd, entries_.data(), header.count * sizeof(Entry), sizeof header);
    const std::size_t data_start = table_bytes(header.count);
    for (const Entry& e : entries_) {
      if (e.offset < data_start || e.offset > size_ || e.length > size_ - e.offset) {
        throw CorruptFrame("attachment buffer outside the memfd");
      }
    }
  } catch (...) {
    platform::close_fd(fd_);
    fd_ = -1;
    throw;
  }
}

Attachment::~Attachment() { platform::close_fd(fd_); }

Attachment::Attachment(Attachment&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(std::exchange(other.size_, 0)), entries_(std::move(other.entries_)) {}

Attachment& Attachment::operator=(Attachment&& other) noexcept {
  if (this != &other) {
    platform::close_fd(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
    entries_ = std::move(other.entries_);
  }
  return *this;
}

std::size_t Attachment::payload_bytes() const noexcept {
  std::size_t total = 0;
  for (const Entry& e : entries_) total += e.length;
  return total;
}

Attachment Attachment::pack(std::span<const std::span<const std::byte>> buffers) {
  std::vector<Entry> entries;
  entries.reserve(buffers.size());
  std::size_t offset = align_up(table_bytes(buffers.size()), kPage);
  for (const auto& b : buffers) {
    entries.push_back({offset, b.size()});
    offset = align_up(offset + b.size(), kPage);
  }
  const std::size_t size = offset;
  Attachment out;
  out.fd_ = platform::memfd("multilane-buffers", size);
  out.size_ = size;
  out.entries_ = std::move(entries);
  void* map = platform::map_shared(out.fd_, size, /*populate=*/true);
  auto* base = static_cast<std::byte*>(map);
  const TableHeader header{kMagic, buffers.size()};
  std::memcpy(base, &header, sizeof header);
  if (!out.entries_.empty()) {
    std::memcpy(base + sizeof header, out.entries_.data(), out.entries_.size() * sizeof(Entry));
  }
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i].empty()) std::memcpy(base + out.entries_[i].offset, buffers[i].data(), buffers[i].size());
  }
  platform::unmap(map, size);
  return out;
}

AttachmentMap::AttachmentMap(const Attachment& attachment)
    : size_(attachment.size()), entries_(attachment.entries()) {
  if (attachment.empty()) throw std::invalid_argument("cannot map an empty attachment");
  base_ = static_cast<std::byte*>(platform::map_private(attachment.fd(), size_));
}

AttachmentMap::~AttachmentMap() { platform::unmap(base_, size_); }

std::span<std::byte> AttachmentMap::buffer(std::size_t index) const {
  if (index >= entries_.size()) throw std::out_of_range("attachment buffer " + std::to_string(index));
  return {base_ + entries_[index].offset, static_cast<std::size_t>(entries_[index].length)};
}

}  // namespace multilane
