// cpp/src/shm_region.cpp
// ShmRegion: create or attach an anonymous memfd mapping, and release it exactly once.
#include "multilane/shm_region.hpp"

#include <utility>

#include "multilane/platform.hpp"

namespace multilane {

ShmRegion ShmRegion::create(std::size_t size, const char* debug_name) {
  const int fd = platform::memfd(debug_name, size);
  try {
    return {fd, platform::map_shared(fd, size), size};
  } catch (...) {
    platform::close_fd(fd);
    throw;
  }
}

ShmRegion ShmRegion::attach(int fd) {
  try {
    const std::size_t size = platform::file_size(fd);
    return {fd, platform::map_shared(fd, size), size};
  } catch (...) {
    platform::close_fd(fd);
    throw;
  }
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ShmRegion::~ShmRegion() { reset(); }

void ShmRegion::reset() noexcept {
  platform::unmap(data_, size_);
  platform::close_fd(fd_);
  data_ = nullptr;
  fd_ = -1;
  size_ = 0;
}

}  // namespace multilane
