// cpp/include/multilane/link.hpp
// The shared memory of a pool: one hub region (the collector's doorbell) and one link region
// per worker (its two rings, doorbells and the id of the task it is running).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "multilane/channel.hpp"
#include "multilane/doorbell.hpp"
#include "multilane/shm_region.hpp"

namespace multilane {

/// Mapped by the parent and every worker. Workers ring `collector` after each reply, so one
/// parent thread can sleep on one futex for the whole pool.
struct HubHeader {
  static constexpr std::uint32_t kMagic = 0x4d4c4842;  // "MLHB"
  std::uint32_t magic = 0;
  alignas(64) Doorbell collector;
};

/// The start of a worker's link region; two rings follow it (parent->worker, worker->parent).
struct LinkHeader {
  static constexpr std::uint32_t kMagic = 0x4d4c4c4b;  // "MLLK"
  std::uint32_t magic = 0;
  std::uint32_t version = 1;
  std::uint64_t ring_capacity = 0;
  std::uint64_t inline_max = 0;
  alignas(64) Doorbell to_worker;          // rung by the parent after a push: the worker sleeps here
  alignas(64) Doorbell to_worker_space;    // rung by the worker after a pop (the parent never waits on it)
  alignas(64) Doorbell to_parent_space;    // rung by the parent after a pop: a worker with a full reply ring sleeps here
  alignas(64) std::atomic<std::uint64_t> running_task{0};  // written by the worker: 0 when idle
  std::atomic<std::uint64_t> tasks_started{0};             // written by the worker
};
static_assert(sizeof(LinkHeader) % 64 == 0);

/// Offsets of the two rings in a link region of a given ring capacity.
struct LinkLayout {
  std::size_t to_worker = 0;
  std::size_t to_parent = 0;
  std::size_t total = 0;
  static LinkLayout of(std::size_t ring_capacity);
};

ShmRegion create_hub_region();
HubHeader* hub_header(const ShmRegion& hub);  // validates

/// A link region with both rings initialised.
ShmRegion create_link_region(std::size_t ring_capacity, std::size_t inline_max);
LinkHeader* link_header(const ShmRegion& link);  // validates

/// The parent's channel on a link (sends on to_worker, receives from to_parent).
Channel parent_channel(const ShmRegion& link, HubHeader* hub, int socket_fd);
/// The worker's channel on a link (sends on to_parent, receives from to_worker).
Channel worker_channel(const ShmRegion& link, HubHeader* hub, int socket_fd);

/// What a worker process holds: its link, the hub, its socket. Owns the descriptors.
class Endpoint {
 public:
  /// Blobs to the parent are packed into blocks of `arena` if given (borrowed; see Channel).
  Endpoint(int link_fd, int hub_fd, int socket_fd, SpinPolicy policy = {}, Arena* arena = nullptr);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
  ~Endpoint();

  /// Waits up to `timeout` (negative: forever) for the parent's next frame.
  bool recv(Frame& out, std::chrono::nanoseconds timeout) { return channel_.recv(out, timeout, policy_); }
  /// Sends to the parent, waiting while the reply ring is full.
  void send(const FrameHeader& header, std::span<const std::byte> payload,
            std::span<const Attachment> attachments = {});
  /// Publishes the task this worker is running (0: none), read by the parent if it dies.
  void set_running(std::uint64_t task_id) noexcept;

 private:
  ShmRegion link_;
  ShmRegion hub_;
  int socket_ = -1;
  SpinPolicy policy_;
  Channel channel_;
};

}  // namespace multilane
