// cpp/src/hub.cpp
// Hub: spawn workers with their link, send without blocking, gather replies and exits.
#include "multilane/hub.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "multilane/platform.hpp"

namespace multilane {

struct Hub::Slot {
  ShmRegion link;
  int parent_socket = -1;
  pid_t pid = 0;
  Channel channel;
  // Attachments sent to this worker that it may not have released yet. When the worker
  // is gone (the slot is released), whatever it still held can never be released: those
  // blocks are abandoned, so their arena closes them instead of reusing them.
  std::vector<Delivery> delivered;

  void note_delivery(const Attachment& attachment) {
    std::erase_if(delivered, [](const Delivery& d) { return d.released(); });
    delivered.emplace_back(attachment);
  }
  ~Slot() {
    for (const Delivery& d : delivered) d.abandon();
    platform::close_fd(parent_socket);
  }
};

Hub::Hub(HubOptions options)
    : options_(options),
      hub_(create_hub_region()),
      header_(hub_header(hub_)),
      supervisor_([this] { header_->collector.ring(); }) {
  if (options_.inline_max == 0) options_.inline_max = options_.ring_capacity / 16;
  Ring::bytes_for(options_.ring_capacity);  // validates the capacity
  if (options_.inline_max + sizeof(FrameHeader) > options_.ring_capacity / 4) {
    throw std::invalid_argument("inline_max must leave room for at least four frames in the ring");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw SystemError("pipe2", errno);
  lifeline_read_ = fds[0];
  lifeline_write_ = fds[1];
}

Hub::~Hub() {
  supervisor_.terminate_all(std::chrono::milliseconds(0));
  platform::close_fd(lifeline_read_);
  platform::close_fd(lifeline_write_);
}

Hub::Spawned Hub::spawn(std::vector<std::string> argv) {
  auto slot = std::make_shared<Slot>();
  slot->link = create_link_region(options_.ring_capacity, options_.inline_max);
  int pair[2];
  platform::socket_pair(pair);
  slot->parent_socket = pair[0];
  const int worker_socket = pair[1];
  slot->channel = parent_channel(slot->link, header_, slot->parent_socket);
  slot->channel.use_arena(options_.arena);
  argv.push_back("--multilane-fds=" + std::to_string(slot->link.fd()) + "," + std::to_string(hub_.fd()) + "," +
                 std::to_string(worker_socket) + "," + std::to_string(lifeline_read_));
  // Held across the spawn so that `wait` cannot see this worker's exit before its slot.
  std::lock_guard lock(mutex_);
  try {
    slot->pid = supervisor_.spawn(argv, {slot->link.fd(), hub_.fd(), worker_socket, lifeline_read_});
  } catch (...) {
    platform::close_fd(worker_socket);
    throw;
  }
  platform::close_fd(worker_socket);  // the worker has its copy
  slots_.push_back(slot);
  generation_.fetch_add(1, std::memory_order_release);
  return {static_cast<int>(slots_.size() - 1), slot->pid};
}

std::shared_ptr<Hub::Slot> Hub::find(int slot) const {
  std::lock_guard lock(mutex_);
  if (slot < 0 || static_cast<std::size_t>(slot) >= slots_.size() || !slots_[slot]) {
    throw std::out_of_range("no worker in slot " + std::to_string(slot));
  }
  return slots_[slot];
}

bool Hub::try_send(int slot, const FrameHeader& header, std::span<const std::byte> payload,
                   std::span<const Attachment> attachments) {
  const auto target = find(slot);
  Attachment blob;
  if (!target->channel.try_send(header, payload, attachments, &blob)) return false;
  for (const Attachment& a : attachments) target->note_delivery(a);
  if (!blob.empty()) target->note_delivery(blob);
  return true;
}

bool Hub::signal(int slot, int sig) { return supervisor_.signal(find(slot)->pid, sig); }

std::uint64_t Hub::running_task(int slot) const {
  const auto s = find(slot);
  return link_header(s->link)->running_task.load(std::memory_order_acquire);
}

void Hub::release(int slot) {
  std::lock_guard lock(mutex_);
  if (slot >= 0 && static_cast<std::size_t>(slot) < slots_.size()) slots_[slot].reset();
  generation_.fetch_add(1, std::memory_order_release);
}

void Hub::wake() noexcept {
  wake_epoch_.fetch_add(1, std::memory_order_release);
  header_->collector.ring();
}

void Hub::begin_help() noexcept { helpers_.fetch_add(1, std::memory_order_acq_rel); }

void Hub::end_help() noexcept {
  if (helpers_.fetch_sub(1, std::memory_order_acq_rel) == 1 && any_readable(live())) {
    header_->collector.ring();  // frames the helper left: hand them to the background waiter
  }
}

bool Hub::terminate_all(std::chrono::milliseconds grace) { return supervisor_.terminate_all(grace); }

Hub::Slots Hub::live() const {
  std::lock_guard lock(mutex_);
  return slots_;
}

bool Hub::any_readable(const Slots& slots) {
  for (const auto& slot : slots) {
    if (slot && slot->channel.readable()) return true;
  }
  return false;
}

bool Hub::wait_ready(std::chrono::nanoseconds timeout, SpinPolicy spin, bool background) {
  // The background waiter must not miss a wake() that came while it was busy elsewhere.
  const std::uint64_t epoch =
      background ? background_seen_.load(std::memory_order_relaxed) : wake_epoch_.load(std::memory_order_acquire);
  const std::uint64_t generation = generation_.load(std::memory_order_acquire);
  const Slots slots = live();
  const bool ready = header_->collector.wait_until(
      [&] {
        if (wake_epoch_.load(std::memory_order_acquire) != epoch || supervisor_.has_exits() ||
            generation_.load(std::memory_order_acquire) != generation) {
          return true;
        }
        if (background && helpers_.load(std::memory_order_acquire) > 0) return false;
        return any_readable(slots);
      },
      timeout, spin);
  if (background) background_seen_.store(wake_epoch_.load(std::memory_order_acquire), std::memory_order_relaxed);
  return ready;
}

std::vector<HubEvent> Hub::wait(std::chrono::nanoseconds timeout, std::size_t max_events) {
  // The single collector's wait: as the background waiter it also returns for a wake()
  // that came before it started waiting (found by Hub.WakeEndsAWaitAtOnce under TSan).
  wait_ready(timeout, options_.spin, true);
  return drain(max_events);
}

std::vector<HubEvent> Hub::drain(std::size_t max_events) {
  std::lock_guard drain_lock(drain_mutex_);
  std::vector<HubEvent> events;
  auto take = [&](int index, const std::shared_ptr<Slot>& slot, std::size_t limit) {
    HubEvent event;
    while (events.size() < limit && slot->channel.try_recv(event.frame)) {
      event.type = HubEvent::Type::kFrame;
      event.slot = index;
      events.push_back(std::move(event));
      event = HubEvent{};
    }
  };

  // Exits first: deliver each dead worker's last frames, then the exit itself.
  for (const ExitEvent& exit : supervisor_.take_exits()) {
    int index = -1;
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard lock(mutex_);
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i] && slots_[i]->pid == exit.pid) {
          index = static_cast<int>(i);
          slot = slots_[i];
        }
      }
    }
    if (!slot) continue;
    take(index, slot, ~std::size_t{0});
    HubEvent event;
    event.type = HubEvent::Type::kExit;
    event.slot = index;
    event.exit = exit;
    event.running_task = link_header(slot->link)->running_task.load(std::memory_order_acquire);
    events.push_back(std::move(event));
  }
  // Then replies, round-robin so that one busy worker cannot starve the others.
  const Slots slots = live();
  const std::size_t n = slots.size();
  for (std::size_t k = 0; k < n && events.size() < max_events; ++k) {
    const std::size_t i = (next_poll_ + k) % n;
    if (slots[i]) take(static_cast<int>(i), slots[i], max_events);
  }
  if (n != 0) next_poll_ = (next_poll_ + 1) % n;
  return events;
}

}  // namespace multilane
