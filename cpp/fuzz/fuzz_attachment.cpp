// cpp/fuzz/fuzz_attachment.cpp
// libFuzzer target: an attachment memfd with arbitrary contents (table and buffers). Opening
// it must either throw CorruptFrame or give buffers that all lie inside the mapping; reading
// every byte of them must not fault (built with AddressSanitizer).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "multilane/attachment.hpp"
#include "multilane/platform.hpp"
#include "multilane/ring.hpp"

using namespace multilane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first byte stretches the file beyond the bytes given, as a peer may ftruncate.
  if (size == 0) return 0;
  const std::size_t file = size - 1 + static_cast<std::size_t>(data[0]) * 64;
  const int fd = platform::memfd("fuzz", file);
  if (file != 0) {
    void* map = platform::map_shared(fd, file);
    std::memcpy(map, data + 1, size - 1);
    platform::unmap(map, file);
  }
  try {
    const Attachment attachment(fd);  // owns fd from here on
    const AttachmentMap map(attachment);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < map.count(); ++i) {
      for (std::byte b : map.buffer(i)) sum += static_cast<std::uint64_t>(b);
    }
    (void)sum;
  } catch (const CorruptFrame&) {
  }
  return 0;
}
