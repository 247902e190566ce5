// bindings/bind_wait_watch.cpp
// Binds WaitWatch; its callbacks run on the watcher's native thread and take the GIL to run.
#include <nanobind/nanobind.h>

#include <memory>

#include "bindings.hpp"
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
};

}  // namespace

void bind_wait_watch(nb::module_& m) {
  nb::class_<WaitWatch>(m, "WaitWatch", "Tells, from a native thread, when a watched thread waits (see wait_watch.hpp).")
      .def(nb::init<>())
      .def(
          "watch",
          [](WaitWatch& watch, double after_s, double max_cpu, double max_process_cpu, nb::object callback) {
            auto held = std::make_shared<PyCallback>(std::move(callback));
            const auto after = std::chrono::nanoseconds(static_cast<long long>(after_s * 1e9));
            return watch.watch(after, max_cpu, max_process_cpu, [held] { (*held)(); });
          },
          nb::arg("after"), nb::arg("max_cpu"), nb::arg("max_process_cpu"), nb::arg("callback"),
          "Watches the calling thread: `callback()` runs once on the watcher's thread when, "
          "over some `after` seconds (looked at every `after`, from `after / 8` in), this "
          "thread waited, using under `max_cpu` of a core, and the process under "
          "`max_process_cpu` cores. Returns the watch's id (0: cannot watch here).")
      .def("unwatch", &WaitWatch::unwatch, nb::arg("id"), nb::call_guard<nb::gil_scoped_release>(),
           "Ends a watch: True if its callback ran (waits for it if it is running), False if it never will.")
      .def("close", &WaitWatch::close, nb::call_guard<nb::gil_scoped_release>())
      .def("stats", [](const WaitWatch& watch) {
        const WaitWatch::Stats s = watch.stats();
        nb::dict out;
        out["watches"] = s.watches;
        out["fired"] = s.fired;
        out["polls"] = s.polls;
        return out;
      });
}

}  // namespace multilane::bindings
