// cpp/include/multilane/attachment.hpp
// Attachment: large out-of-band buffers that travel beside a frame, in a reusable memfd block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace multilane {

class Arena;

/// Buffers packed into one anonymous memfd (a block): a table at offset 0, then each
/// buffer at a page-aligned offset. The sender copies the buffers in once (`Arena::pack`);
/// the descriptor crosses to the receiver over the link's socket (SCM_RIGHTS), and the
/// receiver maps it (`AttachmentMap`) instead of copying.
///
/// Blocks are reused: faulting in fresh pages costs far more than copying into pages that
/// are already there. The block's table holds a shared count of deliveries not yet
/// released; the sender counts one up per send, and a receiver counts it down once its
/// last mapping of that delivery is gone. A block returns to its arena for reuse only
/// when its sender's handles are gone and that count is zero, so no receiver ever sees a
/// block rewritten under it. A block sent to a process that died is `taint`ed: it is
/// closed instead of reused (its count can no longer reach zero). The kernel frees the
/// memory when the last descriptor and mapping are gone, so nothing outlives the processes.
///
/// A child forked from the process that made a handle inherits it inert: it unmaps and
/// closes its own copies, but never counts a delivery down nor returns a block to an
/// arena, because the block and its count are still the parent's.
///
/// Copyable handle (shared ownership of the block or of the receipt).
class Attachment {
 public:
  struct Entry {
    std::uint64_t offset;
    std::uint64_t length;
  };

  Attachment() = default;
  /// Adopts a received descriptor; throws CorruptFrame if its table is not valid.
  explicit Attachment(int fd);

  [[nodiscard]] bool empty() const noexcept { return state_ == nullptr; }
  [[nodiscard]] int fd() const noexcept;
  /// Bytes of the memfd that hold the table and the buffers (the block may be larger).
  [[nodiscard]] std::size_t size() const noexcept;
  /// Bytes of the buffers themselves.
  [[nodiscard]] std::size_t payload_bytes() const noexcept;
  [[nodiscard]] std::size_t count() const noexcept;
  [[nodiscard]] const std::vector<Entry>& entries() const noexcept;
  /// Sender side: buffer `index` as the sender maps it (shared with the block), for a
  /// block from `Arena::allocate` that the sender fills in place. Throws on a receipt.
  [[nodiscard]] std::byte* writable(std::size_t index) const;

  /// Sender side: one more delivery to release (called by the channel as it sends).
  void note_sent() const;
  /// Sender side: the block went to a process that died; never reuse it.
  void taint() const noexcept;
  /// Sender side: the sender now maps bytes [offset, offset + size) of the block privately
  /// (copy-on-write: see SharedHeap); whoever takes the block next from the arena maps
  /// them shared again first (and faults them in at once: cheaper than page by page).
  void note_private(std::size_t offset, std::size_t size) const;
  /// Sender side: every delivery of this block has been released (true on the receiver).
  [[nodiscard]] bool released() const noexcept;

  struct State;  // the block (sender) or the receipt (receiver)

 private:
  friend class Arena;
  friend class AttachmentMap;
  friend class Delivery;
  explicit Attachment(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

/// Reusable blocks for the attachments (and blobs, see Channel) one process sends. Keeps
/// free blocks up to `keep_bytes` and `kMaxFreeBlocks` (their pages stay faulted in); with
/// `keep_bytes` 0, a block is closed as soon as its sender lets go. Thread-safe.
class Arena {
 public:
  static constexpr std::size_t kMaxFreeBlocks = 64;  // each holds a descriptor
  explicit Arena(std::size_t keep_bytes);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// Copies `buffers` into a free block (or a new one) and returns it as an Attachment.
  Attachment pack(std::span<const std::span<const std::byte>> buffers);
  /// A block holding one buffer of `size` bytes that the sender fills in place
  /// (`Attachment::writable(0)`), page-aligned. A new block's pages are faulted in as they
  /// are touched, and are zero; a reused one holds old bytes unless `zeroed`.
  Attachment allocate(std::size_t size, bool zeroed);
  /// Closes every free block (e.g. once no pool is left to send with).
  void trim();

  struct Stats {
    std::size_t blocks_made = 0;    // memfds created
    std::size_t blocks_reused = 0;  // packs that found a free block
    std::size_t free_bytes = 0;     // held by free blocks now
    std::size_t lent_blocks = 0;    // blocks a handle or a receiver still holds
  };
  [[nodiscard]] Stats stats() const;

  struct Shared;  // outlives the Arena while blocks are out

 private:
  friend class SharedHeap;  // holds the lock across a fork
  void lock_for_fork();
  void unlock_after_fork();
  std::shared_ptr<Shared> shared_;
};

/// A record of one send of an attachment, for whoever must clean up if its receiver dies:
/// it does not keep the block from going back to its arena.
class Delivery {
 public:
  explicit Delivery(const Attachment& attachment);
  /// The receiver released this block (or the block has moved on since).
  [[nodiscard]] bool released() const;
  /// The receiver is gone without releasing it: the block must never be reused.
  void abandon() const;

 private:
  std::weak_ptr<Attachment::State> state_;
  std::shared_ptr<Arena::Shared> arena_;
  const void* block_ = nullptr;
  std::uint64_t generation_ = 0;
};

/// A private, copy-on-write mapping of an attachment: the receiver may read and write its
/// buffers; writes stay in this process (the sender and other receivers never see them).
/// Keeps the delivery (or, on the sender, the block) held until destroyed.
///
/// A receiver keeps the mapping of a block it has released for the next delivery of the
/// same block (the sender's arena reuses its blocks), so a block arriving again costs no
/// page-table work: mapping 256 MB and unmapping it cost 21 ms here, the copy into the
/// block 13 ms. A kept mapping still shows the block's current bytes, except on pages
/// this process wrote (copied on write): a mapping with any such page is never kept.
class AttachmentMap {
 public:
  explicit AttachmentMap(const Attachment& attachment);
  ~AttachmentMap();
  AttachmentMap(const AttachmentMap&) = delete;
  AttachmentMap& operator=(const AttachmentMap&) = delete;

  [[nodiscard]] std::size_t count() const noexcept { return entries_.size(); }
  [[nodiscard]] std::span<std::byte> buffer(std::size_t index) const;
  /// True if the mapping was kept from an earlier delivery of the same block.
  [[nodiscard]] bool reused() const noexcept { return reused_; }

  /// Mappings of released blocks kept for reuse: at most kKeptMappings, and no more bytes
  /// than `set_kept_bytes` allows (the oldest go first).
  static constexpr std::size_t kKeptMappings = 16;
  static void set_kept_bytes(std::size_t bytes) noexcept;
  /// Unmaps every kept mapping (e.g. once no pool is left to receive from).
  static void drop_kept() noexcept;
  /// Checks the mappings released since the last call, keeping the clean ones (a worker
  /// calls it after its reply is sent; taking a mapping does it first anyway).
  static void settle_kept() noexcept;
  /// Bytes of the mappings kept now (those released but not yet settled do not count).
  [[nodiscard]] static std::size_t kept_bytes() noexcept;

 private:
  std::shared_ptr<Attachment::State> hold_;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;      // mapped: the whole block
  bool keepable_ = false;     // a receipt's mapping, which may be kept for the next one
  bool reused_ = false;
  std::uint64_t device_ = 0;
  std::uint64_t inode_ = 0;
  std::vector<Attachment::Entry> entries_;
};

}  // namespace multilane
