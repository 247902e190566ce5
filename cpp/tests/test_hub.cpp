// cpp/tests/test_hub.cpp
// Hub: exits are reported with the worker's status, wake() ends a wait, slots and descriptors are released.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <signal.h>

#include "multilane/hub.hpp"

using namespace multilane;
using namespace std::chrono_literals;

namespace {
// Hub appends "--multilane-fds=..." to argv; for `sh -c SCRIPT` it becomes $0, harmless.
std::vector<std::string> shell(const std::string& script) { return {"/bin/sh", "-c", script}; }

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"), {}));
}

HubEvent wait_for_exit(Hub& hub) {
  for (int i = 0; i < 100; ++i) {
    for (HubEvent& e : hub.wait(5s, 16)) {
      if (e.type == HubEvent::Type::kExit) return std::move(e);
    }
  }
  ADD_FAILURE() << "no exit event";
  return {};
}
}  // namespace

TEST(Hub, ReportsAWorkersExitWithItsStatus) {
  Hub hub;
  const Hub::Spawned w = hub.spawn(shell("exit 5"));
  EXPECT_EQ(w.slot, 0);
  const HubEvent e = wait_for_exit(hub);
  EXPECT_EQ(e.slot, 0);
  EXPECT_EQ(e.exit.pid, w.pid);
  EXPECT_EQ(e.exit.exit_code, 5);
  EXPECT_EQ(e.running_task, 0U);  // it never started a task
  EXPECT_EQ(hub.alive(), 0U);
}

TEST(Hub, ReportsSignalsAndNumbersSlotsForLife) {
  Hub hub;
  hub.spawn(shell("exit 0"));
  const HubEvent first = wait_for_exit(hub);
  hub.release(first.slot);
  const Hub::Spawned second = hub.spawn(shell("kill -9 $$"));
  EXPECT_EQ(second.slot, 1);  // a replacement gets a new slot
  const HubEvent e = wait_for_exit(hub);
  EXPECT_EQ(e.slot, 1);
  EXPECT_EQ(e.exit.exit_signal, SIGKILL);
  EXPECT_THROW((void)hub.try_send(first.slot, {1, 4, 0, 0}, {}), std::out_of_range);
}

TEST(Hub, WakeEndsAWaitAtOnce) {
  Hub hub;
  hub.spawn(shell("exec sleep 30"));
  const auto start = std::chrono::steady_clock::now();
  std::thread waker([&] { hub.wake(); });
  EXPECT_TRUE(hub.wait(10s, 16).empty());
  waker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Hub, SendToAWorkerThatDoesNotReadFillsTheRingWithoutBlocking) {
  HubOptions options;
  options.ring_capacity = 4096;
  Hub hub(options);
  const Hub::Spawned w = hub.spawn(shell("exec sleep 30"));
  const std::vector<std::byte> payload(200);
  int sent = 0;
  while (hub.try_send(w.slot, {static_cast<std::uint64_t>(sent + 1), 4, 0, 0}, payload)) ++sent;
  EXPECT_GT(sent, 5);
  EXPECT_LT(sent, 4096 / 200);
  EXPECT_TRUE(hub.terminate_all(1000ms));
}

TEST(Hub, DestructionKillsWorkersAndClosesDescriptors) {
  const std::size_t before = open_fds();
  pid_t pid = 0;
  {
    Hub hub;
    pid = hub.spawn(shell("exec sleep 30")).pid;
    ASSERT_EQ(kill(pid, 0), 0);
  }
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(open_fds(), before);
}

TEST(Hub, RejectsAnInlineLimitThatLeavesNoRoom) {
  HubOptions options;
  options.ring_capacity = 4096;
  options.inline_max = 2048;
  EXPECT_THROW(Hub{options}, std::invalid_argument);
}
