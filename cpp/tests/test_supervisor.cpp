// cpp/tests/test_supervisor.cpp
// Supervisor: exit codes and signals, exec failures, kill, kept descriptors, cleanup on destruction.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>

#include "multilane/platform.hpp"
#include "multilane/supervisor.hpp"

using namespace multilane;
using namespace std::chrono_literals;

namespace {
ExitEvent wait_exit(Supervisor& sup) {
  EXPECT_TRUE(sup.wait_all(10000ms));
  auto exits = sup.take_exits();
  EXPECT_EQ(exits.size(), 1U);
  return exits.empty() ? ExitEvent{} : exits[0];
}
}  // namespace

TEST(Supervisor, ReportsExitCodes) {
  std::atomic<int> called{0};
  Supervisor sup([&] { ++called; });
  const pid_t pid = sup.spawn({"/bin/sh", "-c", "exit 3"}, {});
  const ExitEvent e = wait_exit(sup);
  EXPECT_EQ(e.pid, pid);
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.exit_signal, 0);
  EXPECT_EQ(called.load(), 1);
}

TEST(Supervisor, ReportsSignals) {
  Supervisor sup;
  sup.spawn({"/bin/sh", "-c", "kill -9 $$"}, {});
  const ExitEvent e = wait_exit(sup);
  EXPECT_EQ(e.exit_code, -1);
  EXPECT_EQ(e.exit_signal, SIGKILL);
}

TEST(Supervisor, ExecFailureNamesTheProgram) {
  Supervisor sup;
  try {
    sup.spawn({"/nonexistent/program"}, {});
    FAIL() << "expected SystemError";
  } catch (const SystemError& e) {
    EXPECT_EQ(e.code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("execve /nonexistent/program"), std::string::npos);
  }
  EXPECT_EQ(sup.alive(), 0U);
}

TEST(Supervisor, SignalKillsAndUnknownPidsAreRefused) {
  Supervisor sup;
  const pid_t pid = sup.spawn({"/bin/sleep", "30"}, {});
  EXPECT_EQ(sup.alive(), 1U);
  EXPECT_TRUE(sup.signal(pid, SIGKILL));
  const ExitEvent e = wait_exit(sup);
  EXPECT_EQ(e.exit_signal, SIGKILL);
  EXPECT_FALSE(sup.signal(pid, SIGKILL));
  EXPECT_FALSE(sup.signal(1, SIGKILL));
}

TEST(Supervisor, KeepsOnlyTheDescriptorsAskedFor) {
  int kept[2], hidden[2];
  ASSERT_EQ(pipe2(kept, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(hidden, O_CLOEXEC), 0);
  Supervisor sup;
  const std::string script = "test -e /proc/self/fd/" + std::to_string(kept[0]) + " && ! test -e /proc/self/fd/" +
                             std::to_string(hidden[0]);
  sup.spawn({"/bin/sh", "-c", script}, {kept[0]});
  EXPECT_EQ(wait_exit(sup).exit_code, 0);
  for (int fd : {kept[0], kept[1], hidden[0], hidden[1]}) close(fd);
}

TEST(Supervisor, DestructorKillsAndReapsChildren) {
  pid_t pid = 0;
  {
    Supervisor sup;
    pid = sup.spawn({"/bin/sleep", "30"}, {});
    ASSERT_EQ(kill(pid, 0), 0);
  }
  EXPECT_EQ(kill(pid, 0), -1);  // reaped: not even a zombie is left
  EXPECT_EQ(errno, ESRCH);
}

TEST(Supervisor, TerminateAllStopsEveryone) {
  Supervisor sup;
  for (int i = 0; i < 3; ++i) sup.spawn({"/bin/sleep", "30"}, {});
  EXPECT_TRUE(sup.terminate_all(1000ms));
  EXPECT_EQ(sup.alive(), 0U);
  EXPECT_EQ(sup.take_exits().size(), 3U);
}
