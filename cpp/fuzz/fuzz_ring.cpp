// cpp/fuzz/fuzz_ring.cpp
// libFuzzer target: a ring whose shared memory holds arbitrary bytes (a corrupt or hostile
// peer). Pushing and popping must stay within the buffer, returning whole frames or throwing
// CorruptFrame: never crash, hang or touch memory out of bounds (built with AddressSanitizer).
// It found that a misaligned index made the 8-byte prefix copy run past the buffer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "multilane/doorbell.hpp"
#include "multilane/frame.hpp"
#include "multilane/ring.hpp"

using namespace multilane;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kCapacity = 256;
  if (size < 16) return 0;
  std::vector<std::byte> mem(Ring::bytes_for(kCapacity));
  Doorbell readable, writable;
  Ring producer = Ring::create(mem.data(), kCapacity, &readable, &writable);
  (void)producer;
  auto* header = reinterpret_cast<RingHeader*>(mem.data());
  std::uint64_t head = 0, tail = 0;
  std::memcpy(&head, data, 8);
  std::memcpy(&tail, data + 8, 8);
  // The peer controls the indices and the data bytes, not the capacity we mapped.
  header->head.store(head % (1ULL << 20));
  header->tail.store(tail % (1ULL << 20));
  std::byte* ring_data = mem.data() + sizeof(RingHeader);
  std::memcpy(ring_data, data + 16, std::min(size - 16, kCapacity));
  // The producer side writes through the same indices: it must refuse bad ones too.
  Ring writer = Ring::attach(mem.data(), mem.size(), &readable, &writable);
  const std::byte payload[12] = {};
  try {
    (void)writer.try_push(payload);
  } catch (const CorruptFrame&) {
  }
  Ring consumer = Ring::attach(mem.data(), mem.size(), &readable, &writable);
  std::vector<std::byte> out;
  for (int i = 0; i < 64; ++i) {
    try {
      if (!consumer.try_pop(out)) break;
      if (out.size() >= sizeof(FrameHeader)) (void)decode_header(out);
    } catch (const CorruptFrame&) {
      break;
    }
  }
  return 0;
}
