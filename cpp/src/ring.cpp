// cpp/src/ring.cpp
// The single-producer single-consumer frame ring (see ring.hpp for the protocol).
#include "multilane/ring.hpp"

#include <cstring>
#include <new>
#include <string>

namespace multilane {

namespace {
struct Prefix {
  std::uint32_t length;
  std::uint32_t check;  // ~length: a cheap guard against reading garbage as a frame
};
static_assert(sizeof(Prefix) == Ring::kPrefix);

bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }
}  // namespace

FrameTooLarge::FrameTooLarge(std::size_t frame, std::size_t max_frame)
    : std::length_error("frame of " + std::to_string(frame) + " bytes can never fit in a ring whose largest frame is " +
                        std::to_string(max_frame) + " bytes") {}

std::size_t Ring::bytes_for(std::size_t capacity) {
  if (capacity < 64 || !is_power_of_two(capacity) || capacity > (std::size_t{1} << 31)) {
    throw std::invalid_argument("ring capacity must be a power of two from 64 bytes to 2 GiB, got " +
                                std::to_string(capacity));
  }
  return sizeof(RingHeader) + capacity;
}

Ring Ring::create(void* mem, std::size_t capacity, Doorbell* readable, Doorbell* writable) {
  bytes_for(capacity);  // validates
  auto* header = new (mem) RingHeader{};
  header->capacity = capacity;
  header->magic = RingHeader::kMagic;
  return {header, reinterpret_cast<std::byte*>(header + 1), capacity, readable, writable};
}

Ring Ring::attach(void* mem, std::size_t mem_size, Doorbell* readable, Doorbell* writable) {
  if (mem_size < sizeof(RingHeader)) throw CorruptFrame("ring memory smaller than its header");
  auto* header = static_cast<RingHeader*>(mem);
  const std::size_t capacity = header->capacity;
  if (header->magic != RingHeader::kMagic || !is_power_of_two(capacity) ||
      mem_size < sizeof(RingHeader) + capacity) {
    throw CorruptFrame("memory does not hold a multilane ring");
  }
  Ring ring{header, reinterpret_cast<std::byte*>(header + 1), capacity, readable, writable};
  ring.cached_head_ = header->head.load(std::memory_order_acquire);
  ring.cached_tail_ = header->tail.load(std::memory_order_acquire);
  return ring;
}

void Ring::copy_in(std::uint64_t at, std::span<const std::byte> src) noexcept {
  if (src.empty()) return;
  const std::size_t offset = at & (capacity_ - 1);
  const std::size_t first = std::min(src.size(), capacity_ - offset);
  std::memcpy(data_ + offset, src.data(), first);
  if (first < src.size()) std::memcpy(data_, src.data() + first, src.size() - first);
}

void Ring::copy_out(std::uint64_t at, std::byte* dst, std::size_t n) const noexcept {
  if (n == 0) return;
  const std::size_t offset = at & (capacity_ - 1);
  const std::size_t first = std::min(n, capacity_ - offset);
  std::memcpy(dst, data_ + offset, first);
  if (first < n) std::memcpy(dst + first, data_, n - first);
}

bool Ring::try_push(std::span<const std::byte> a, std::span<const std::byte> b) {
  const std::size_t length = a.size() + b.size();
  if (length > max_frame()) throw FrameTooLarge(length, max_frame());
  const std::size_t need = footprint(length);
  const std::uint64_t tail = header_->tail.load(std::memory_order_relaxed);  // only we write it
  // The indices live in memory the peer can write: check them before writing through them.
  if (tail & 7) throw CorruptFrame("ring tail is not 8-byte aligned");
  if (tail - cached_head_ + need > capacity_) {
    cached_head_ = header_->head.load(std::memory_order_acquire);  // pairs with release in try_pop
    if (tail - cached_head_ > capacity_) throw CorruptFrame("ring indices are inconsistent");
    if (tail - cached_head_ + need > capacity_) return false;
  }
  const Prefix prefix{static_cast<std::uint32_t>(length), ~static_cast<std::uint32_t>(length)};
  std::memcpy(data_ + (tail & (capacity_ - 1)), &prefix, sizeof prefix);  // never wraps: 8-aligned
  copy_in(tail + kPrefix, a);
  copy_in(tail + kPrefix + a.size(), b);
  header_->tail.store(tail + need, std::memory_order_release);  // pairs with acquire in try_pop
  if (readable_ != nullptr) readable_->ring();
  return true;
}

bool Ring::wait_for_room(std::size_t length, std::chrono::nanoseconds timeout, SpinPolicy policy) {
  if (length > max_frame()) throw FrameTooLarge(length, max_frame());
  if (writable_ == nullptr) throw std::logic_error("Ring: waiting for room needs a writable doorbell");
  const std::size_t need = footprint(length);
  return writable_->wait_until(
      [&] {
        const std::uint64_t tail = header_->tail.load(std::memory_order_relaxed);
        return tail - header_->head.load(std::memory_order_acquire) + need <= capacity_;
      },
      timeout, policy);
}

bool Ring::push(std::span<const std::byte> a, std::span<const std::byte> b, std::chrono::nanoseconds timeout,
                SpinPolicy policy) {
  if (try_push(a, b)) return true;
  if (!wait_for_room(a.size() + b.size(), timeout, policy)) return false;
  return try_push(a, b);
}

bool Ring::try_pop(std::vector<std::byte>& out) {
  const std::uint64_t head = header_->head.load(std::memory_order_relaxed);  // only we write it
  if (cached_tail_ == head) {
    cached_tail_ = header_->tail.load(std::memory_order_acquire);  // pairs with release in try_push
    if (cached_tail_ == head) return false;
  }
  const std::uint64_t available = cached_tail_ - head;
  if (available > capacity_ || available < kPrefix || ((head | cached_tail_) & 7) != 0) {
    throw CorruptFrame("ring indices are inconsistent");
  }
  Prefix prefix{};
  std::memcpy(&prefix, data_ + (head & (capacity_ - 1)), sizeof prefix);
  if (prefix.check != ~prefix.length) throw CorruptFrame("frame prefix check failed");
  const std::size_t need = footprint(prefix.length);
  if (prefix.length > max_frame() || need > available) throw CorruptFrame("frame length exceeds the data in the ring");
  out.resize(prefix.length);
  copy_out(head + kPrefix, out.data(), prefix.length);
  header_->head.store(head + need, std::memory_order_release);  // pairs with acquire in try_push
  if (writable_ != nullptr) writable_->ring();
  return true;
}

bool Ring::pop(std::vector<std::byte>& out, std::chrono::nanoseconds timeout, SpinPolicy policy) {
  if (try_pop(out)) return true;
  if (readable_ == nullptr) throw std::logic_error("Ring::pop needs a readable doorbell to wait on");
  if (!readable_->wait_until([this] { return readable(); }, timeout, policy)) return false;
  return try_pop(out);
}

bool Ring::readable() const noexcept {
  return header_->tail.load(std::memory_order_acquire) != header_->head.load(std::memory_order_relaxed);
}

std::size_t Ring::used() const noexcept {
  return header_->tail.load(std::memory_order_acquire) - header_->head.load(std::memory_order_acquire);
}

}  // namespace multilane
