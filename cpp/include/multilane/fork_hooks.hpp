// cpp/include/multilane/fork_hooks.hpp
// ForkHooks: objects that act around fork(), so that a child inherits them in a usable state.
#pragma once

namespace multilane {

/// A base for objects that must act around a fork() of the process: typically take their
/// lock before it and let go of it after it, in parent and child alike, so that the child
/// (which has only the forking thread) never inherits a lock some other thread held.
///
/// One pthread_atfork registration serves every object: `before_fork` runs for each in the
/// order they registered, `after_fork` in the opposite order, in the parent and in the
/// child. Neither may wait for a lock another thread could hold while it waits for the
/// forking thread (for instance Python's GIL, which the forking thread may hold).
class ForkHooks {
 public:
  virtual void before_fork() noexcept = 0;
  /// `in_child`: in the new process, where only the forking thread runs (a condition
  /// variable another thread waited on then must be made anew there).
  virtual void after_fork(bool in_child) noexcept = 0;

 protected:
  ForkHooks() = default;
  ~ForkHooks() = default;
  ForkHooks(const ForkHooks&) = delete;
  ForkHooks& operator=(const ForkHooks&) = delete;
  /// From the derived constructor, once the object can take its hooks.
  void watch_forks();
  /// From the derived destructor, before the object stops being able to.
  void stop_watching_forks();
};

}  // namespace multilane
