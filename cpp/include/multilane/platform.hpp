// cpp/include/multilane/platform.hpp
// The one seam between multilane and the operating system: memfd, futex, pidfd, spawning.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace multilane {

/// Raised for a failed system call; `what()` names the call and the errno text.
class SystemError : public std::runtime_error {
 public:
  SystemError(const std::string& call, int err);
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

namespace platform {

/// Anonymous shared memory: a close-on-exec memfd (nothing appears in /dev/shm).
int memfd(const char* name, std::size_t size);
/// Size in bytes of the file behind `fd`.
std::size_t file_size(int fd);
/// A shared read-write mapping; `populate` faults every page in at once (MAP_POPULATE).
void* map_shared(int fd, std::size_t size, bool populate = false);
/// A private copy-on-write mapping: writes stay in this process, the file is never written.
/// Its first `populate` bytes are mapped in at once, read-only (copy-on-write stays intact).
void* map_private(int fd, std::size_t size, std::size_t populate);
/// The identity of the file behind `fd`: the same file gives the same id while it exists.
struct FileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::size_t size = 0;
  friend bool operator==(const FileId&, const FileId&) = default;
};
FileId file_id(int fd);
/// Maps `size` bytes of `fd` from `offset` at exactly `addr`, replacing what was mapped there
/// (MAP_FIXED), read-write and shared or private (copy-on-write). The kernel swaps the
/// mapping under its lock: a thread writing there meanwhile lands before (in the old
/// mapping) or after (in the new one), never nowhere.
/// `populate` maps every page in at once (MAP_POPULATE; only with `shared`): on a
/// machine where each page fault is slow, 256 MB of page cache takes ~30 ms so and
/// ~125 ms fault by fault.
void remap(void* addr, std::size_t size, int fd, std::size_t offset, bool shared, bool populate = false);
/// The calling process's id (not cached: right in a child just after fork).
pid_t current_pid() noexcept;
/// The calling thread's id (a kernel task id, as the ones under /proc/self/task).
pid_t current_tid() noexcept;

/// What the scheduler says of a thread of this process: whether it is runnable now (on a
/// core, or waiting for one), and how long it has waited for a core in all. A thread kept
/// from a core has an idle CPU clock, like one that waits for I/O: this tells them apart.
struct ThreadSched {
  bool runnable = false;
  std::int64_t run_delay_ns = -1;  // -1: the kernel keeps no count (no CONFIG_SCHED_INFO)
};
/// False if the thread is gone or the kernel tells nothing (no /proc).
bool thread_sched(pid_t tid, ThreadSched* out) noexcept;
/// `ThreadSched::run_delay_ns` alone (one /proc file, not two): -1 if unknown.
std::int64_t thread_run_delay_ns(pid_t tid) noexcept;
/// CPU time, in all, of every thread of this process but the calling one, each read from
/// its own CPU clock: exact to the nanosecond for a thread on a core now, where the
/// process's clock (CLOCK_PROCESS_CPUTIME_ID) counts other threads' running time only at
/// a scheduler tick (0 or 3.9 ms, here, for NumPy's BLAS thread over a 1.5 ms matrix
/// product). A thread that exits between two readings takes its time with it. -1 if
/// unknown (no /proc).
std::int64_t other_threads_cpu_ns() noexcept;
/// False only if every present page of the private file mapping [addr, addr + size) is
/// still the file's own page: a page this process wrote (so copied on write), or a range
/// the OS cannot report on (no /proc/self/pagemap), makes it true.
bool has_private_pages(const void* addr, std::size_t size) noexcept;
/// CPUs this process may run on (at least 1).
unsigned usable_cpus() noexcept;
/// Reads exactly `size` bytes at `offset` (pread); throws SystemError (EIO if too short).
void read_at(int fd, void* out, std::size_t size, std::size_t offset);
void unmap(void* addr, std::size_t size) noexcept;
void close_fd(int fd) noexcept;

/// Process-shared futex on a 32-bit word. `wait` returns when woken, on a spurious wake-up,
/// when `*word != expected`, or after `timeout` (negative: no limit).
void futex_wait(const std::uint32_t* word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
void futex_wake_all(const std::uint32_t* word) noexcept;

/// A CPU hint for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// A process descriptor (pidfd): signals and waits cannot hit a recycled pid.
int pidfd_open(pid_t pid);
void pidfd_send_signal(int pidfd, int sig);
/// Reaps the exited child behind `pidfd`; fills exit code or signal. False if not exited yet.
bool pidfd_reap(int pidfd, int* exit_code, int* exit_signal);

/// Fork and exec `argv` keeping exactly `keep_fds` open (everything else is closed on exec).
/// The child gets SIGKILL when the calling thread's process dies (PR_SET_PDEATHSIG) and
/// ignores nothing. Throws SystemError if the exec fails (errno reported back by the child).
pid_t spawn(const std::vector<std::string>& argv, const std::vector<int>& keep_fds);

/// A connected pair of close-on-exec Unix stream sockets.
void socket_pair(int fds[2]);
/// Most descriptors one message carries (the kernel allows 253).
inline constexpr std::size_t kMaxFdsPerMessage = 64;
/// Send / receive descriptors (SCM_RIGHTS) with a one-byte message: 1 to kMaxFdsPerMessage.
void send_fds(int sock, std::span<const int> fds);
/// The descriptors of the next message; empty when none is waiting and `block` is false.
std::vector<int> recv_fds(int sock, bool block);
inline void send_fd(int sock, int fd) { send_fds(sock, {&fd, 1}); }
/// One descriptor; -1 when none is waiting and `block` is false. A message that carries
/// more than one is a protocol error (SystemError, EPROTO; they are closed).
int recv_fd(int sock, bool block);

/// While alive, every signal is blocked in the calling thread; the mask it had comes back
/// after. A thread started meanwhile inherits the blocked mask from its first instruction,
/// so a service thread never takes a signal meant for the application's threads (CPython
/// only flags a signal delivered elsewhere, and a main thread asleep would not see it).
/// Signals that arrive meanwhile stay pending for the caller. Not copyable.
class SignalsBlocked {
 public:
  SignalsBlocked();
  ~SignalsBlocked();
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace platform
}  // namespace multilane
