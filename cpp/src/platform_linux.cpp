// cpp/src/platform_linux.cpp
// Linux implementation of the platform seam: memfd, futex, pidfd, fork+exec, SCM_RIGHTS.
#include "multilane/platform.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char** environ;

namespace multilane {

SystemError::SystemError(const std::string& call, int err)
    : std::runtime_error(call + ": " + std::strerror(err)), code_(err) {}

namespace platform {

int memfd(const char* name, std::size_t size) {
  const int fd = static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC));
  if (fd < 0) throw SystemError("memfd_create", errno);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    ::close(fd);
    throw SystemError("ftruncate", err);
  }
  return fd;
}

std::size_t file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw SystemError("fstat", errno);
  return static_cast<std::size_t>(st.st_size);
}

void* map_shared(int fd, std::size_t size, bool populate) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
  if (p == MAP_FAILED) throw SystemError("mmap", errno);
  return p;
}

void* map_private(int fd, std::size_t size, std::size_t populate) {
  // Not MAP_POPULATE: on a private writable mapping it write-faults every page, which
  // copies them all. MADV_POPULATE_READ (Linux 5.14) maps the pages read-only in one go
  // and keeps copy-on-write; on older kernels pages fault in as they are read.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw SystemError("mmap", errno);
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
  if (populate > 0) (void)::madvise(p, std::min(populate, size), MADV_POPULATE_READ);
  return p;
}

void remap(void* addr, std::size_t size, int fd, std::size_t offset, bool shared, bool populate) {
  // Never MAP_POPULATE a private writable mapping: it would copy every page on write.
  const int flags = (shared ? MAP_SHARED | (populate ? MAP_POPULATE : 0) : MAP_PRIVATE) | MAP_FIXED;
  void* p = ::mmap(addr, size, PROT_READ | PROT_WRITE, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) throw SystemError("mmap (fixed)", errno);
}

pid_t current_pid() noexcept { return ::getpid(); }

pid_t current_tid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

namespace {

/// Reads a small /proc file whole into `buf` (NUL-terminated); its length, or -1.
ssize_t read_small_file(const char* path, char* buf, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = ::read(fd, buf, size - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n >= 0) buf[n] = '\0';
  return n;
}

}  // namespace

bool thread_sched(pid_t tid, ThreadSched* out) noexcept {
  char path[64];
  char buf[512];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  if (read_small_file(path, buf, sizeof buf) <= 0) return false;
  // "tid (comm) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
  const char* close = std::strrchr(buf, ')');
  if (close == nullptr || close[1] != ' ' || close[2] == '\0') return false;
  out->runnable = close[2] == 'R';
  out->run_delay_ns = thread_run_delay_ns(tid);
  return true;
}

std::int64_t thread_run_delay_ns(pid_t tid) noexcept {
  char path[64];
  char buf[128];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(tid));
  if (read_small_file(path, buf, sizeof buf) <= 0) return -1;  // "on-cpu-ns run-delay-ns slices"
  long long on_cpu = 0;
  long long delay = 0;
  return std::sscanf(buf, "%lld %lld", &on_cpu, &delay) == 2 ? delay : -1;
}

std::int64_t other_threads_cpu_ns() noexcept {
  // getdents64 into a buffer on the stack, not opendir(): no malloc, so a thread forked
  // while another was in the allocator (the watcher's child of a parent) cannot hang here.
  const int tasks = ::open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tasks < 0) return -1;
  const pid_t self = current_tid();
  std::int64_t total = 0;
  alignas(8) char buf[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, tasks, buf, sizeof buf);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      struct Dirent64 {  // linux_dirent64
        std::uint64_t ino;
        std::int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* entry = reinterpret_cast<const Dirent64*>(buf + at);
      at += entry->reclen;
      char* end = nullptr;
      const long tid = std::strtol(entry->name, &end, 10);
      if (end == entry->name || *end != '\0' || tid == self) continue;  // ".", "..", this one
      // The kernel's clock id of a thread's CPU time (MAKE_THREAD_CPUCLOCK: the tid
      // negated, shifted, with the "per thread" and "scheduler" bits), for this process's.
      const auto clock = static_cast<clockid_t>((~static_cast<clockid_t>(tid) << 3) | 4 | 2);
      timespec ts{};
      if (::clock_gettime(clock, &ts) == 0) total += std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    }
  }
  ::close(tasks);
  return total;
}

FileId file_id(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw SystemError("fstat", errno);
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::size_t>(st.st_size)};
}

namespace {

bool private_pages_in(int pagemap, const void* addr, std::size_t size) noexcept {
  // /proc/self/pagemap: 8 bytes a page. Bit 63 present, 62 swapped, 61 "file page or
  // shared anonymous". A page of a private file mapping that is present or swapped but
  // not a file page was copied on write.
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  constexpr std::size_t kBatch = 4096;
  std::uint64_t entries[kBatch];
  std::size_t first = reinterpret_cast<std::uintptr_t>(addr) / page;
  std::size_t left = (size + page - 1) / page;
  while (left > 0) {
    const std::size_t n = std::min(left, kBatch);
    const ssize_t got = ::pread(pagemap, entries, n * sizeof entries[0], static_cast<off_t>(first * sizeof entries[0]));
    if (got != static_cast<ssize_t>(n * sizeof entries[0])) return true;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t e = entries[i];
      if ((e >> 62 & 3) != 0 && (e >> 61 & 1) == 0) return true;
    }
    first += n;
    left -= n;
  }
  return false;
}

}  // namespace

bool has_private_pages(const void* addr, std::size_t size) noexcept {
  const int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);  // not kept: a few µs
  if (pagemap < 0) return true;
  const bool found = private_pages_in(pagemap, addr, size);
  ::close(pagemap);
  return found;
}

unsigned usable_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
  return static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
}

void read_at(int fd, void* out, std::size_t size, std::size_t offset) {
  auto* dst = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd, dst, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError("pread", errno);
    }
    if (n == 0) throw SystemError("pread: the file is shorter than expected", EIO);
    dst += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::size_t>(n);
  }
}

void unmap(void* addr, std::size_t size) noexcept {
  if (addr != nullptr) ::munmap(addr, size);
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

void futex_wait(const std::uint32_t* word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept {
  struct timespec ts {};
  struct timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // Not FUTEX_PRIVATE_FLAG: the word lives in memory shared between processes.
  ::syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, nullptr, 0);
}

void futex_wake_all(const std::uint32_t* word) noexcept { ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

int pidfd_open(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw SystemError("pidfd_open", errno);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // pidfds are close-on-exec already; be explicit
  return fd;
}

void pidfd_send_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0 && errno != ESRCH) {
    throw SystemError("pidfd_send_signal", errno);
  }
}

bool pidfd_reap(int pidfd, int* exit_code, int* exit_signal) {
  siginfo_t info{};
  for (;;) {
    const int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
    if (rc == 0) break;
    if (errno == EINTR) continue;
    throw SystemError("waitid", errno);
  }
  if (info.si_pid == 0) return false;
  *exit_code = info.si_code == CLD_EXITED ? info.si_status : -1;
  *exit_signal = (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) ? info.si_status : 0;
  return true;
}

pid_t spawn(const std::vector<std::string>& argv, const std::vector<int>& keep_fds) {
  if (argv.empty()) throw std::invalid_argument("spawn needs at least a program path");
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int report[2];  // the child writes its errno here if exec fails; EOF means exec succeeded
  if (::pipe2(report, O_CLOEXEC) != 0) throw SystemError("pipe2", errno);
  const pid_t parent = ::getpid();
  // vfork, not fork: a forked child shares the parent's pages copy-on-write until it
  // execs, and every page of the parent's heap stays write-protected after that, so the
  // parent's next write to each one faults (20,000 small NumPy arrays made in a loop took
  // 0.12 s after a pool start, against 0.07 s). A vfork child borrows the parent's memory
  // and the parent waits until it execs. As in CPython's _posixsubprocess: every signal is
  // blocked around it, so that no handler of the parent's runs in the child, which resets
  // the handled ones to their default before it unblocks them.
  ::sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::vfork();
  if (pid == 0) {
    // Only system calls until exec: the child runs on the parent's memory and stack.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    ::fcntl(report[1], F_SETFD, FD_CLOEXEC);
    for (const int fd : keep_fds) ::fcntl(fd, F_SETFD, 0);
    struct ::sigaction handler {};
    struct ::sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (::sigaction(sig, nullptr, &handler) == 0 && handler.sa_handler != SIG_IGN &&
          handler.sa_handler != SIG_DFL) {
        ::sigaction(sig, &fallback, nullptr);
      }
    }
    ::sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the supervisor thread may block signals
    ::execve(cargv[0], cargv.data(), environ);
    const int err = errno;
    (void)!::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  const int spawn_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    ::close(report[0]);
    ::close(report[1]);
    throw SystemError("vfork", spawn_errno);
  }
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw SystemError("execve " + argv[0], child_errno);
  }
  return pid;
}

void socket_pair(int fds[2]) {
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw SystemError("socketpair", errno);
}

void send_fds(int sock, std::span<const int> fds) {
  if (fds.empty() || fds.size() > kMaxFdsPerMessage) {
    throw std::invalid_argument("a message carries 1 to " + std::to_string(kMaxFdsPerMessage) + " descriptors");
  }
  char byte = 'F';
  struct iovec iov {
    &byte, 1
  };
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) == 1) return;
    if (errno != EINTR) throw SystemError("sendmsg", errno);
  }
}

std::vector<int> recv_fds(int sock, bool block) {
  char byte = 0;
  struct iovec iov {
    &byte, 1
  };
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {};
  if (n < 0) throw SystemError("recvmsg", errno);
  if (n == 0) throw SystemError("recvmsg (peer closed)", EPIPE);
  std::vector<int> fds;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const std::size_t first = fds.size();
    fds.resize(first + count);
    std::memcpy(fds.data() + first, CMSG_DATA(cmsg), count * sizeof(int));
  }
  if (fds.empty() || (msg.msg_flags & MSG_CTRUNC) != 0) {
    for (const int fd : fds) ::close(fd);
    throw SystemError("recvmsg (no descriptor in message, or too many)", EPROTO);
  }
  return fds;
}

int recv_fd(int sock, bool block) {
  std::vector<int> fds = recv_fds(sock, block);
  if (fds.empty()) return -1;
  if (fds.size() != 1) {
    for (const int fd : fds) ::close(fd);
    throw SystemError("recvmsg (several descriptors where one was expected)", EPROTO);
  }
  return fds[0];
}

SignalsBlocked::SignalsBlocked() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous_);
}

SignalsBlocked::~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

}  // namespace platform
}  // namespace multilane
