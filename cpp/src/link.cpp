// cpp/src/link.cpp
// Layout of the hub and link regions, and the worker's Endpoint over them.
#include "multilane/link.hpp"

#include <new>

#include "multilane/platform.hpp"

namespace multilane {

namespace {
constexpr std::size_t align64(std::size_t n) { return (n + 63) & ~std::size_t{63}; }
}  // namespace

LinkLayout LinkLayout::of(std::size_t ring_capacity) {
  LinkLayout layout;
  layout.to_worker = align64(sizeof(LinkHeader));
  layout.to_parent = layout.to_worker + align64(Ring::bytes_for(ring_capacity));
  layout.total = layout.to_parent + align64(Ring::bytes_for(ring_capacity));
  return layout;
}

ShmRegion create_hub_region() {
  ShmRegion hub = ShmRegion::create(4096, "multilane-hub");
  auto* header = new (hub.data()) HubHeader{};
  header->magic = HubHeader::kMagic;
  return hub;
}

HubHeader* hub_header(const ShmRegion& hub) {
  auto* header = static_cast<HubHeader*>(hub.data());
  if (hub.size() < sizeof(HubHeader) || header->magic != HubHeader::kMagic) {
    throw CorruptFrame("memory does not hold a multilane hub");
  }
  return header;
}

ShmRegion create_link_region(std::size_t ring_capacity, std::size_t inline_max) {
  const LinkLayout layout = LinkLayout::of(ring_capacity);
  ShmRegion link = ShmRegion::create(layout.total, "multilane-link");
  auto* header = new (link.data()) LinkHeader{};
  header->ring_capacity = ring_capacity;
  header->inline_max = inline_max;
  auto* base = static_cast<std::byte*>(link.data());
  (void)Ring::create(base + layout.to_worker, ring_capacity, nullptr, nullptr);
  (void)Ring::create(base + layout.to_parent, ring_capacity, nullptr, nullptr);
  header->magic = LinkHeader::kMagic;
  return link;
}

LinkHeader* link_header(const ShmRegion& link) {
  auto* header = static_cast<LinkHeader*>(link.data());
  if (link.size() < sizeof(LinkHeader) || header->magic != LinkHeader::kMagic ||
      LinkLayout::of(header->ring_capacity).total > link.size()) {
    throw CorruptFrame("memory does not hold a multilane link");
  }
  return header;
}

namespace {
struct Rings {
  Ring to_worker;
  Ring to_parent;
};

Rings rings_of(const ShmRegion& link, LinkHeader* header, HubHeader* hub, bool parent_side) {
  const LinkLayout layout = LinkLayout::of(header->ring_capacity);
  auto* base = static_cast<std::byte*>(link.data());
  const std::size_t room = link.size();
  // Each side only wires the doorbells it rings or sleeps on.
  Rings rings;
  rings.to_worker = Ring::attach(base + layout.to_worker, room - layout.to_worker, &header->to_worker,
                                 parent_side ? nullptr : &header->to_worker_space);
  rings.to_parent = Ring::attach(base + layout.to_parent, room - layout.to_parent, &hub->collector,
                                 &header->to_parent_space);
  return rings;
}
}  // namespace

Channel parent_channel(const ShmRegion& link, HubHeader* hub, int socket_fd) {
  LinkHeader* header = link_header(link);
  Rings rings = rings_of(link, header, hub, true);
  return {rings.to_worker, rings.to_parent, socket_fd, header->inline_max};
}

Channel worker_channel(const ShmRegion& link, HubHeader* hub, int socket_fd) {
  LinkHeader* header = link_header(link);
  Rings rings = rings_of(link, header, hub, false);
  return {rings.to_parent, rings.to_worker, socket_fd, header->inline_max};
}

Endpoint::Endpoint(int link_fd, int hub_fd, int socket_fd, SpinPolicy policy, Arena* arena)
    : link_(ShmRegion::attach(link_fd)), hub_(ShmRegion::attach(hub_fd)), socket_(socket_fd), policy_(policy) {
  channel_ = worker_channel(link_, hub_header(hub_), socket_);
  channel_.use_arena(arena);
}

Endpoint::~Endpoint() { platform::close_fd(socket_); }

void Endpoint::send(const FrameHeader& header, std::span<const std::byte> payload,
                    std::span<const Attachment> attachments) {
  channel_.send(header, payload, std::chrono::nanoseconds(-1), policy_, attachments);
}

void Endpoint::set_running(std::uint64_t task_id) noexcept {
  LinkHeader* header = static_cast<LinkHeader*>(link_.data());
  if (task_id != 0) header->tasks_started.fetch_add(1, std::memory_order_relaxed);
  header->running_task.store(task_id, std::memory_order_release);  // read by the parent after the worker died
}

}  // namespace multilane
