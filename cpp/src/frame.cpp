// cpp/src/frame.cpp
// Decoding of frame headers, with the length check every received frame goes through.
#include "multilane/frame.hpp"

#include <cstring>

#include "multilane/ring.hpp"

namespace multilane {

FrameHeader decode_header(std::span<const std::byte> raw) {
  if (raw.size() < sizeof(FrameHeader)) throw CorruptFrame("frame shorter than its header");
  FrameHeader header;
  std::memcpy(&header, raw.data(), sizeof header);
  return header;
}

}  // namespace multilane
