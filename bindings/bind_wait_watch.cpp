// bindings/bind_wait_watch.cpp
// Binds WaitWatch; its callbacks run on the watcher's native thread and take the GIL to run.
#include <nanobind/nanobind.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "bindings.hpp"
#include "multilane/platform.hpp"
#include "multilane/wait_watch.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

namespace {

/// A Python callable the watcher's thread may call and drop: it takes the GIL for both,
/// and reports an exception the callable raises as unraisable (nobody could catch it).
struct PyCallback {
  nb::object fn;
  explicit PyCallback(nb::object f) : fn(std::move(f)) {}
  PyCallback(const PyCallback&) = delete;
  PyCallback& operator=(const PyCallback&) = delete;
  ~PyCallback() {
    nb::gil_scoped_acquire gil;
    fn.reset();
  }
  void operator()() {
    nb::gil_scoped_acquire gil;
    try {
      fn();
    } catch (nb::python_error& e) {
      e.discard_as_unraisable(fn);
    }
  }
  /// The GIL-wait probe: times how long this thread waits for the GIL, then calls
  /// `fn(seconds)` with it; whether to probe again at the next computing look is what it
  /// returns. While a thread computes holding the GIL, the wait is about one switch
  /// interval (the holder is asked to let go after one); released, next to nothing.
  /// The time this thread itself waited for a core meanwhile is left out: on a busy
  /// machine it made calls that release the GIL look as if they held it.
  bool probe_gil() {
    const pid_t self = platform::current_tid();
    const std::int64_t before = platform::thread_run_delay_ns(self);
    const auto asked = std::chrono::steady_clock::now();
    nb::gil_scoped_acquire gil;
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
    // Read holding the GIL, so the computing thread waits for it: one file, not two.
    const std::int64_t after = before >= 0 ? platform::thread_run_delay_ns(self) : -1;
    if (after >= before && before >= 0) {
      waited = std::max(0.0, waited - static_cast<double>(after - before) * 1e-9);
    }
    try {
      return nb::cast<bool>(fn(waited));
    } catch (nb::python_error& e) {
      e.discard_as_unraisable(fn);
    } catch (const nb::cast_error&) {
    }
    return false;
  }
};

}  // namespace

void bind_wait_watch(nb::module_& m) {
  nb::class_<WaitWatch>(m, "WaitWatch", "Tells, from a native thread, when a watched thread waits (see wait_watch.hpp).")
      .def(nb::init<>())
      .def(
          "watch",
          [](WaitWatch& watch, double after_s, double max_cpu, double max_process_cpu, nb::object callback,
             nb::object gil_wait) {
            WaitWatch::Callback on_waiting;
            if (!callback.is_none()) {
              on_waiting = [held = std::make_shared<PyCallback>(std::move(callback))] { (*held)(); };
            }
            WaitWatch::ComputingHook on_computing;
            if (!gil_wait.is_none()) {
              on_computing = [held = std::make_shared<PyCallback>(std::move(gil_wait))] {
                return held->probe_gil();
              };
            }
            const auto after = std::chrono::nanoseconds(static_cast<long long>(after_s * 1e9));
            return watch.watch(after, max_cpu, max_process_cpu, std::move(on_waiting), std::move(on_computing));
          },
          nb::arg("after"), nb::arg("max_cpu"), nb::arg("max_process_cpu"), nb::arg("callback").none(),
          nb::arg("gil_wait").none() = nb::none(),
          "Watches the calling thread: `callback()` (if not None) runs once on the watcher's "
          "thread when, over some `after` seconds (looked at every `after`, from `after / 8` "
          "in), this thread waited, using under `max_cpu` of a core, and the process under "
          "`max_process_cpu` cores. `gil_wait(seconds)`, if given, runs there at each look "
          "that finds this thread computing, as long as it returns True: `seconds` is how "
          "long the watcher waited for the GIL first. Returns the watch's id (0: cannot "
          "watch here).")
      .def("unwatch", &WaitWatch::unwatch, nb::arg("id"), nb::call_guard<nb::gil_scoped_release>(),
           "Ends a watch: True if its callback ran (waits for it if it is running), False if it never will.")
      .def("close", &WaitWatch::close, nb::call_guard<nb::gil_scoped_release>())
      .def("end_if_idle", &WaitWatch::end_if_idle, nb::call_guard<nb::gil_scoped_release>(),
           "Ends the watcher's thread now if nothing is watched (else it lingers a moment).")
      .def("stats", [](const WaitWatch& watch) {
        const WaitWatch::Stats s = watch.stats();
        nb::dict out;
        out["watches"] = s.watches;
        out["fired"] = s.fired;
        out["polls"] = s.polls;
        return out;
      });
  m.def(
      "other_threads_cpu",
      []() -> nb::object {
        const std::int64_t ns = platform::other_threads_cpu_ns();
        if (ns < 0) return nb::none();
        return nb::float_(static_cast<double>(ns) * 1e-9);
      },
      "CPU seconds of every thread of this process but the calling one, each read exactly "
      "(the process clock counts other threads only at scheduler ticks); None if unknown.");
}

}  // namespace multilane::bindings
