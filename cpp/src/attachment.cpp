// cpp/src/attachment.cpp
// Attachment: blocks of an Arena (sender), receipts (receiver), private mappings of either.
#include "multilane/attachment.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "multilane/platform.hpp"
#include "multilane/ring.hpp"

namespace multilane {

namespace {

constexpr std::uint64_t kMagic = 0x48434154'54414c4dULL;  // "MLATTACH", little-endian
constexpr std::size_t kPage = 4096;

constexpr std::size_t align_up_pages(std::size_t n) { return (n + kPage - 1) / kPage * kPage; }

/// At offset 0 of every block, followed by `count` entries.
struct TableHeader {
  std::uint64_t magic;
  std::uint64_t count;
  std::atomic<std::int64_t> outstanding;  // deliveries not yet released by their receiver
  std::uint64_t used;                     // bytes of the block in use (table and buffers)
};
static_assert(sizeof(TableHeader) == 32);
static_assert(std::atomic<std::int64_t>::is_always_lock_free, "the count is shared between processes");

/// Below this, one thread copies: starting another costs more than it saves.
constexpr std::size_t kParallelCopyBytes = std::size_t{16} << 20;

/// memcpy, on up to four of this process's CPUs for large buffers: one core does not
/// reach the memory bandwidth (256 MB: 13.2 ms on one, 6.7 ms on two here).
void copy_bytes(std::byte* dst, const std::byte* src, std::size_t n) {
  const std::size_t threads =
      std::min<std::size_t>({platform::usable_cpus(), 4, n / (kParallelCopyBytes / 2)});
  if (threads < 2) {
    std::memcpy(dst, src, n);
    return;
  }
  const std::size_t part = align_up_pages(n / threads);
  std::vector<std::jthread> helpers;
  helpers.reserve(threads - 1);
  for (std::size_t start = part; start < n; start += part) {
    const std::size_t len = std::min(part, n - start);
    try {
      helpers.emplace_back([=] { std::memcpy(dst + start, src + start, len); });
    } catch (const std::system_error&) {  // no thread to be had: copy it here
      std::memcpy(dst + start, src + start, len);
    }
  }
  std::memcpy(dst, src, std::min(part, n));
}  // the helpers join here

constexpr std::size_t align_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

std::size_t table_bytes(std::size_t count) { return sizeof(TableHeader) + count * sizeof(Attachment::Entry); }

/// A memfd the sender keeps mapped (shared) for as long as it owns the block.
struct Block {
  int fd = -1;
  std::size_t capacity = 0;
  std::byte* base = nullptr;
  bool tainted = false;
  std::uint64_t generation = 0;  // bumped each time the block is reused
  pid_t owner = platform::current_pid();  // a child forked since only holds copies
  std::size_t private_offset = 0;  // a range the sender maps privately (SharedHeap)
  std::size_t private_bytes = 0;

  Block(std::size_t size, bool populate) : capacity(size) {
    fd = platform::memfd("multilane-buffers", size);
    try {
      base = static_cast<std::byte*>(platform::map_shared(fd, size, populate));
    } catch (...) {
      platform::close_fd(fd);
      throw;
    }
  }
  ~Block() {
    platform::unmap(base, capacity);
    platform::close_fd(fd);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  [[nodiscard]] TableHeader* header() const { return reinterpret_cast<TableHeader*>(base); }
  /// Maps a privately mapped range shared again, before the block is written by a new user.
  void share_again() {
    if (private_bytes == 0) return;
    platform::remap(base + private_offset, private_bytes, fd, private_offset, /*shared=*/true, /*populate=*/true);
    private_bytes = 0;
  }
  [[nodiscard]] bool released() const { return header()->outstanding.load(std::memory_order_acquire) == 0; }
};

}  // namespace

struct Arena::Shared {
  std::mutex mu;
  pid_t owner = platform::current_pid();  // a forked child must not reuse the parent's blocks
  std::size_t keep_bytes;
  std::vector<std::unique_ptr<Block>> free;       // reusable now
  std::vector<std::unique_ptr<Block>> returning;  // no sender handle, receivers still mapped
  std::size_t free_bytes = 0;
  std::size_t lent = 0;
  std::size_t made = 0;
  std::size_t reused = 0;

  explicit Shared(std::size_t keep) : keep_bytes(keep) {}

  void sweep_locked() {
    for (std::size_t i = 0; i < returning.size();) {
      if (returning[i]->released()) {
        free_bytes += returning[i]->capacity;
        free.push_back(std::move(returning[i]));
        returning[i] = std::move(returning.back());
        returning.pop_back();
      } else {
        ++i;
      }
    }
    // Over the byte budget, the largest block goes first; over the count (descriptors),
    // the smallest: it is the cheapest to make again. Dropping the largest for the count
    // too threw away every 100 MB block as it came back while ~60 blocks of 1 MB sat
    // free, and each 100 MB call made a new one (~140 ms to populate here, against 14 ms
    // for a reused one).
    while (free_bytes > keep_bytes && !free.empty()) drop_locked(/*largest=*/true);
    while (free.size() > Arena::kMaxFreeBlocks) drop_locked(/*largest=*/false);
  }

  void drop_locked(bool largest) {
    std::size_t pick = 0;
    for (std::size_t i = 1; i < free.size(); ++i) {
      const bool better = largest ? free[i]->capacity > free[pick]->capacity
                                  : free[i]->capacity < free[pick]->capacity;
      if (better) pick = i;
    }
    free_bytes -= free[pick]->capacity;
    free[pick] = std::move(free.back());
    free.pop_back();
  }

  /// In a child forked from the owner: the free blocks are still the parent's (their pages
  /// are shared with it), so they are only unmapped here, never reused.
  void adopt_after_fork_locked() {
    const pid_t self = platform::current_pid();
    if (self == owner) return;
    owner = self;
    free.clear();
    returning.clear();
    free_bytes = 0;
    lent = 0;
  }

  /// A block of at least `needed` bytes; `reused` says whether it held bytes before.
  std::unique_ptr<Block> take(std::size_t needed, bool populate, bool* reused_out = nullptr) {
    std::unique_ptr<Block> block;
    {
      std::lock_guard lock(mu);
      adopt_after_fork_locked();
      sweep_locked();
      std::size_t best = free.size();
      for (std::size_t i = 0; i < free.size(); ++i) {
        const std::size_t cap = free[i]->capacity;
        // Big enough, and not wastefully big (a small payload would pin a huge block).
        if (cap >= needed && cap <= needed * 2 + (std::size_t{1} << 20) &&
            (best == free.size() || cap < free[best]->capacity)) {
          best = i;
        }
      }
      if (best != free.size()) {
        block = std::move(free[best]);
        free[best] = std::move(free.back());
        free.pop_back();
        free_bytes -= block->capacity;
        ++block->generation;
        ++reused;
        ++lent;
      }
    }
    if (block) {
      try {
        block->share_again();  // outside the lock: faulting pages in takes a while
      } catch (...) {
        std::lock_guard lock(mu);
        --lent;
        throw;  // no mapping to be had: the block is closed, nothing else is wrong
      }
      if (reused_out != nullptr) *reused_out = true;
      return block;
    }
    block = std::make_unique<Block>(needed, populate);  // outside the lock: faulting pages in is slow
    std::lock_guard lock(mu);
    ++made;
    ++lent;
    if (reused_out != nullptr) *reused_out = false;
    return block;
  }

  /// The block of a delivery whose sender handles are gone, if it still waits for that
  /// delivery's receiver: nullptr once it was released (and maybe reused since).
  Block* waiting_locked(const void* block, std::uint64_t generation) {
    for (auto& b : returning) {
      if (b.get() == block && b->generation == generation && !b->released()) return b.get();
    }
    return nullptr;
  }

  bool released(const void* block, std::uint64_t generation) {
    std::lock_guard lock(mu);
    return waiting_locked(block, generation) == nullptr;
  }

  void abandon(const void* block, std::uint64_t generation) {
    std::lock_guard lock(mu);
    if (Block* b = waiting_locked(block, generation)) {
      std::erase_if(returning, [b](const std::unique_ptr<Block>& r) { return r.get() == b; });
    }
  }

  void give_back(std::unique_ptr<Block> block) {
    std::lock_guard lock(mu);
    adopt_after_fork_locked();
    if (owner != block->owner) return;  // a block of the parent's: closed here, nothing more
    --lent;
    // Destroyed (closed, and freed once its receivers are gone) if it must not or cannot
    // be reused.
    if (block->tainted || keep_bytes == 0) return;
    returning.push_back(std::move(block));
    sweep_locked();
  }
};

/// What an Attachment handle shares: a block of an arena (sender) or a receipt (receiver).
struct Attachment::State {
  // Sender side.
  std::unique_ptr<Block> block;
  std::shared_ptr<Arena::Shared> arena;
  // Receiver side: the descriptor until it is mapped, and the table mapped shared so the
  // delivery can be released.
  int fd = -1;
  TableHeader* header = nullptr;
  std::size_t header_bytes = 0;
  // Both.
  std::size_t used = 0;
  std::vector<Entry> entries;
  pid_t owner = platform::current_pid();  // in a child forked since, the handle is inert

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    const bool inherited = owner != platform::current_pid();
    if (block) {
      if (!inherited) arena->give_back(std::move(block));
      return;  // an inherited block is only unmapped and closed here (~Block)
    }
    if (header != nullptr) {
      if (!inherited) header->outstanding.fetch_sub(1, std::memory_order_acq_rel);
      platform::unmap(header, header_bytes);
    }
    platform::close_fd(fd);
  }
  [[nodiscard]] int descriptor() const noexcept { return block ? block->fd : fd; }
};

Attachment::Attachment(int fd) {
  auto state = std::make_shared<State>();
  state->fd = fd;  // closed by the state from here on, whatever happens
  const std::size_t file = platform::file_size(fd);
  TableHeader header{};
  if (file < sizeof header) throw CorruptFrame("attachment smaller than its table");
  platform::read_at(fd, &header, sizeof header, 0);
  if (header.magic != kMagic) throw CorruptFrame("attachment without its table");
  if (header.count > (file - sizeof header) / sizeof(Entry)) throw CorruptFrame("attachment table too long");
  const std::size_t table = table_bytes(header.count);
  if (header.used < table || header.used > file) throw CorruptFrame("attachment size does not match its table");
  state->entries.resize(header.count);
  if (header.count != 0) platform::read_at(fd, state->entries.data(), header.count * sizeof(Entry), sizeof header);
  for (const Entry& e : state->entries) {
    if (e.offset < table || e.offset > header.used || e.length > header.used - e.offset) {
      throw CorruptFrame("attachment buffer outside its block");
    }
  }
  state->used = header.used;
  state->header_bytes = std::min(align_up(table, kPage), file);
  state->header = static_cast<TableHeader*>(platform::map_shared(fd, state->header_bytes));
  state_ = std::move(state);
}

int Attachment::fd() const noexcept { return state_ ? state_->descriptor() : -1; }
std::size_t Attachment::size() const noexcept { return state_ ? state_->used : 0; }
std::size_t Attachment::count() const noexcept { return state_ ? state_->entries.size() : 0; }

const std::vector<Attachment::Entry>& Attachment::entries() const noexcept {
  static const std::vector<Entry> none;
  return state_ ? state_->entries : none;
}

std::size_t Attachment::payload_bytes() const noexcept {
  std::size_t total = 0;
  for (const Entry& e : entries()) total += e.length;
  return total;
}

std::byte* Attachment::writable(std::size_t index) const {
  if (!state_ || !state_->block) throw std::logic_error("only the process that made a block can write to it");
  if (index >= state_->entries.size()) throw std::out_of_range("attachment buffer " + std::to_string(index));
  return state_->block->base + state_->entries[index].offset;
}

void Attachment::note_private(std::size_t offset, std::size_t size) const {
  if (!state_ || !state_->block) throw std::logic_error("only the process that made a block maps it privately");
  state_->block->private_offset = offset;
  state_->block->private_bytes = size;
}

void Attachment::note_sent() const {
  if (!state_ || !state_->block) throw std::logic_error("only the process that packed an attachment can send it");
  state_->block->header()->outstanding.fetch_add(1, std::memory_order_acq_rel);
}

void Attachment::taint() const noexcept {
  if (state_ && state_->block) state_->block->tainted = true;
}

bool Attachment::released() const noexcept { return !state_ || !state_->block || state_->block->released(); }

Delivery::Delivery(const Attachment& attachment) : state_(attachment.state_) {
  if (attachment.state_ && attachment.state_->block) {
    arena_ = attachment.state_->arena;
    block_ = attachment.state_->block.get();
    generation_ = attachment.state_->block->generation;
  }
}

bool Delivery::released() const {
  if (arena_ == nullptr) return true;  // not a block of an arena
  if (const auto state = state_.lock()) return state->block->released();
  return arena_->released(block_, generation_);
}

void Delivery::abandon() const {
  if (arena_ == nullptr) return;
  if (const auto state = state_.lock()) {
    if (!state->block->released()) state->block->tainted = true;
    return;
  }
  arena_->abandon(block_, generation_);
}

void Arena::trim() {
  std::lock_guard lock(shared_->mu);
  shared_->sweep_locked();
  shared_->free.clear();
  shared_->free_bytes = 0;
}

void Arena::lock_for_fork() { shared_->mu.lock(); }
void Arena::unlock_after_fork() { shared_->mu.unlock(); }

Arena::Arena(std::size_t keep_bytes) : shared_(std::make_shared<Shared>(keep_bytes)) {}
Arena::~Arena() = default;

Attachment Arena::pack(std::span<const std::span<const std::byte>> buffers) {
  std::vector<Attachment::Entry> entries;
  entries.reserve(buffers.size());
  std::size_t offset = align_up(table_bytes(buffers.size()), kPage);
  for (const auto& b : buffers) {
    entries.push_back({offset, b.size()});
    offset = align_up(offset + b.size(), kPage);
  }
  const std::size_t used = offset;
  auto state = std::make_shared<Attachment::State>();
  state->block = shared_->take(used, /*populate=*/true);  // every page is written at once
  state->arena = shared_;
  state->used = used;
  std::byte* base = state->block->base;
  auto* header = new (base) TableHeader{kMagic, buffers.size(), {0}, used};
  (void)header;
  if (!entries.empty()) {
    std::memcpy(base + sizeof(TableHeader), entries.data(), entries.size() * sizeof(Attachment::Entry));
  }
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i].empty()) copy_bytes(base + entries[i].offset, buffers[i].data(), buffers[i].size());
  }
  state->entries = std::move(entries);
  return Attachment(std::move(state));
}

Attachment Arena::allocate(std::size_t size, bool zeroed) {
  const std::size_t offset = align_up(table_bytes(1), kPage);
  const std::size_t used = align_up(offset + size, kPage);
  bool reused = false;
  auto state = std::make_shared<Attachment::State>();
  // Not populated: like anonymous memory, pages are faulted in (and are zero) as they are
  // touched, so a large array that is never filled costs nothing.
  state->block = shared_->take(used, /*populate=*/false, &reused);
  state->arena = shared_;
  state->used = used;
  std::byte* base = state->block->base;
  new (base) TableHeader{kMagic, 1, {0}, used};
  const Attachment::Entry entry{offset, size};
  std::memcpy(base + sizeof(TableHeader), &entry, sizeof entry);
  if (zeroed && reused) std::memset(base + offset, 0, size);
  state->entries.push_back(entry);
  return Attachment(std::move(state));
}

Arena::Stats Arena::stats() const {
  std::lock_guard lock(shared_->mu);
  return {shared_->made, shared_->reused, shared_->free_bytes, shared_->lent + shared_->returning.size()};
}

namespace {

/// Mappings of released receipts, kept for the next delivery of the same block.
class KeptMappings {
 public:
  struct Mapping {
    std::uint64_t device;
    std::uint64_t inode;
    std::size_t size;
    std::byte* base;
  };

  /// A mapping released before it was checked for written pages.
  void defer(Mapping m) {
    std::lock_guard lock(mu_);
    unchecked_.push_back(m);
  }

  /// Checks the deferred mappings: kept if clean, unmapped if this process wrote one.
  void settle() {
    std::vector<Mapping> check;
    {
      std::lock_guard lock(mu_);
      if (unchecked_.empty()) return;
      check.swap(unchecked_);
    }
    for (const Mapping& m : check) {
      if (platform::has_private_pages(m.base, m.size)) {
        platform::unmap(m.base, m.size);
      } else {
        give(m);
      }
    }
  }

  /// A kept mapping of exactly this file, now the caller's; nullptr if there is none.
  std::byte* take(const platform::FileId& file) {
    settle();
    std::lock_guard lock(mu_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->device == file.device && it->inode == file.inode && it->size == file.size) {
        std::byte* base = it->base;
        bytes_ -= it->size;
        kept_.erase(it);
        return base;
      }
    }
    return nullptr;
  }

  /// Keeps `m` (newest last), unmapping the oldest over the limits.
  void give(Mapping m) {
    std::lock_guard lock(mu_);
    kept_.push_back(m);
    bytes_ += m.size;
    evict_locked();
  }

  void set_limit(std::size_t bytes) {
    std::lock_guard lock(mu_);
    limit_ = bytes;
    evict_locked();
  }

  void drop_all() {
    std::vector<Mapping> drop;
    {
      std::lock_guard lock(mu_);
      drop.swap(kept_);
      drop.insert(drop.end(), unchecked_.begin(), unchecked_.end());
      unchecked_.clear();
      bytes_ = 0;
    }
    for (const Mapping& d : drop) platform::unmap(d.base, d.size);
  }

  std::size_t bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  void evict_locked() {
    while (!kept_.empty() && (bytes_ > limit_ || kept_.size() > AttachmentMap::kKeptMappings)) {
      platform::unmap(kept_.front().base, kept_.front().size);  // munmap: quick, no I/O
      bytes_ -= kept_.front().size;
      kept_.erase(kept_.begin());
    }
  }

  std::mutex mu_;
  std::vector<Mapping> kept_;
  std::vector<Mapping> unchecked_;
  std::size_t bytes_ = 0;
  std::size_t limit_ = std::size_t{1} << 30;
};

/// Never destroyed: mappings may be released by objects freed during interpreter exit.
KeptMappings& kept_mappings() {
  static auto* kept = new KeptMappings();
  return *kept;
}

}  // namespace

void AttachmentMap::set_kept_bytes(std::size_t bytes) noexcept { kept_mappings().set_limit(bytes); }
void AttachmentMap::drop_kept() noexcept { kept_mappings().drop_all(); }
std::size_t AttachmentMap::kept_bytes() noexcept { return kept_mappings().bytes(); }
void AttachmentMap::settle_kept() noexcept { kept_mappings().settle(); }

AttachmentMap::AttachmentMap(const Attachment& attachment)
    : hold_(attachment.state_), size_(attachment.size()), entries_(attachment.entries()) {
  if (!hold_) throw std::invalid_argument("cannot map an empty attachment");
  const int fd = hold_->descriptor();
  if (fd < 0) throw std::logic_error("a received attachment can be mapped once");
  if (hold_->block) {  // the sender's own block (shared()): mapped for as long as it is used
    base_ = static_cast<std::byte*>(platform::map_private(fd, size_, size_));
    return;
  }
  // A receipt: map the whole block, so that a later delivery of it with another size
  // finds this mapping again; only the bytes in use are mapped in now.
  const platform::FileId file = platform::file_id(fd);
  keepable_ = true;
  device_ = file.device;
  inode_ = file.inode;
  base_ = kept_mappings().take(file);
  reused_ = base_ != nullptr;
  if (!reused_) base_ = static_cast<std::byte*>(platform::map_private(fd, file.size, size_));
  size_ = file.size;
  platform::close_fd(hold_->fd);  // the mapping is all it needs from here on
  hold_->fd = -1;
}

AttachmentMap::~AttachmentMap() {
  if (!keepable_) {
    platform::unmap(base_, size_);
    return;
  }
  // The delivery is released first, so the sender may reuse the block at once. That is
  // safe: the mapping is not kept until checked for pages this process wrote (2 ms for
  // 256 MB), which happens later, off the reply's path (settle_kept), or before the next
  // mapping is taken.
  hold_.reset();
  kept_mappings().defer({device_, inode_, size_, base_});
}

std::span<std::byte> AttachmentMap::buffer(std::size_t index) const {
  if (index >= entries_.size()) throw std::out_of_range("attachment buffer " + std::to_string(index));
  return {base_ + entries_[index].offset, static_cast<std::size_t>(entries_[index].length)};
}

}  // namespace multilane
