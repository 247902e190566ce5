// cpp/include/multilane/shm_region.hpp
// ShmRegion: an anonymous shared-memory mapping (memfd) that owns its descriptor and mapping.
#pragma once

#include <cstddef>

namespace multilane {

/// Move-only owner of a memfd and its shared mapping. Another process gets the same memory
/// by inheriting the descriptor and calling `attach`. Nothing is ever named in /dev/shm,
/// so nothing can leak there when a process dies.
class ShmRegion {
 public:
  ShmRegion() = default;
  /// A new zero-filled region of `size` bytes.
  static ShmRegion create(std::size_t size, const char* debug_name = "multilane");
  /// Maps the region behind an inherited descriptor. Takes ownership of `fd`.
  static ShmRegion attach(int fd);

  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ~ShmRegion();

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return data_ != nullptr; }

 private:
  ShmRegion(int fd, void* data, std::size_t size) noexcept : fd_(fd), data_(data), size_(size) {}
  void reset() noexcept;

  int fd_ = -1;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace multilane
