// cpp/src/fork_hooks.cpp
// ForkHooks: one pthread_atfork registration for every object, in registration order.
#include "multilane/fork_hooks.hpp"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace multilane {

namespace {

struct Registry {
  std::mutex mu;
  std::vector<ForkHooks*> hooks;
};

Registry& registry() {
  static auto* r = new Registry();  // never destroyed: a fork may come during exit
  return *r;
}

void prepare() {
  Registry& r = registry();
  r.mu.lock();  // held across the fork: no object registers or goes meanwhile
  for (ForkHooks* h : r.hooks) h->before_fork();
}

void after(bool in_child) {
  Registry& r = registry();
  for (auto it = r.hooks.rbegin(); it != r.hooks.rend(); ++it) (*it)->after_fork(in_child);
  r.mu.unlock();
}

void after_in_parent() { after(false); }
void after_in_child() { after(true); }

}  // namespace

void ForkHooks::watch_forks() {
  static const int registered = ::pthread_atfork(prepare, after_in_parent, after_in_child);
  (void)registered;
  std::lock_guard lock(registry().mu);
  registry().hooks.push_back(this);
}

void ForkHooks::stop_watching_forks() {
  std::lock_guard lock(registry().mu);
  std::erase(registry().hooks, this);
}

}  // namespace multilane
