// bindings/bind_hub.cpp
// Binds Hub, the parent's side of a worker pool. Waits and spawns release the GIL.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "multilane/hub.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

namespace {
nb::list events_list(std::vector<HubEvent>& events) {
  nb::list out;
  for (HubEvent& e : events) {
    if (e.type == HubEvent::Type::kFrame) {
      out.append(nb::make_tuple(e.slot, frame_record(e.frame)));
    } else {
      out.append(nb::make_tuple(
          e.slot, exit_record(e.running_task, e.exit.exit_code, e.exit.exit_signal, e.exit.pid)));
    }
  }
  return out;
}
}  // namespace

void bind_hub(nb::module_& m) {
  m.attr("KIND_EXIT") = 0;
  nb::class_<Hub>(m, "Hub", "The parent's side of a worker pool (see cpp/include/multilane/hub.hpp).")
      .def(
          "__init__",
          [](Hub* self, std::size_t ring_capacity, std::size_t inline_max, double spin_us) {
            HubOptions options;
            options.ring_capacity = ring_capacity;
            options.inline_max = inline_max;
            options.spin.spin = std::chrono::nanoseconds(static_cast<long long>(spin_us * 1000));
            options.arena = &process_arena();
            new (self) Hub(options);
          },
          nb::arg("ring_capacity") = std::size_t{1} << 20, nb::arg("inline_max") = 0, nb::arg("spin_us") = 50.0)
      .def(
          "spawn",
          [](Hub& hub, std::vector<std::string> argv) {
            Hub::Spawned s;
            {
              nb::gil_scoped_release release;
              s = hub.spawn(std::move(argv));
            }
            return nb::make_tuple(s.slot, s.pid);
          },
          nb::arg("argv"), "Starts a worker; returns (slot, pid).")
      .def(
          "try_send",
          [](Hub& hub, int slot, std::uint32_t kind, std::uint64_t task_id, std::uint64_t aux, std::uint32_t flags,
             const nb::bytes& payload) {
            const FrameHeader header{task_id, kind, flags, aux};
            if (payload.size() <= hub.options().inline_max) return hub.try_send(slot, header, as_span(payload));
            nb::gil_scoped_release release;  // a blob copies the payload into a memfd
            return hub.try_send(slot, header, as_span(payload));
          },
          nb::arg("slot"), nb::arg("kind"), nb::arg("task_id"), nb::arg("aux"), nb::arg("flags"), nb::arg("payload"),
          "Sends a frame without blocking; False if the worker's ring is full.")
      .def(
          "try_send_attached",
          [](Hub& hub, int slot, std::uint32_t kind, std::uint64_t task_id, std::uint64_t aux, std::uint32_t flags,
             const nb::bytes& payload, const nb::handle& attachments) {
            const FrameHeader header{task_id, kind, flags, aux};
            const std::vector<Attachment> handles = attachments_of(attachments);
            nb::gil_scoped_release release;
            return hub.try_send(slot, header, as_span(payload), handles);
          },
          nb::arg("slot"), nb::arg("kind"), nb::arg("task_id"), nb::arg("aux"), nb::arg("flags"), nb::arg("payload"),
          nb::arg("attachments"),
          "try_send with Attachments (a sequence) beside the frame (kept off the tiny-frame path).")
      .def(
          "wait_ready",
          [](Hub& hub, const nb::object& timeout, double spin_us, bool background) {
            const auto t = to_timeout(timeout);
            SpinPolicy spin;
            spin.spin = std::chrono::nanoseconds(static_cast<long long>(spin_us * 1000));
            nb::gil_scoped_release release;
            return hub.wait_ready(t, spin, background);
          },
          nb::arg("timeout").none(), nb::arg("spin_us"), nb::arg("background"),
          "Waits until frames or exits are waiting or wake() is called; False on timeout.")
      .def(
          "drain",
          [](Hub& hub, std::size_t max_events) {
            std::vector<HubEvent> events;
            {
              nb::gil_scoped_release release;
              events = hub.drain(max_events);
            }
            return events_list(events);
          },
          nb::arg("max_events") = 4096, "Takes waiting events without blocking (see wait()).")
      .def("begin_help", &Hub::begin_help)
      .def("end_help", &Hub::end_help)
      .def("wake", &Hub::wake, "Makes the current or next wait() return.")
      .def("signal", &Hub::signal, nb::arg("slot"), nb::arg("sig"))
      .def("running_task", &Hub::running_task, nb::arg("slot"))
      .def("release", &Hub::release, nb::arg("slot"))
      .def(
          "terminate_all",
          [](Hub& hub, double grace) {
            nb::gil_scoped_release release;
            return hub.terminate_all(std::chrono::milliseconds(static_cast<long long>(grace * 1000)));
          },
          nb::arg("grace"))
      .def(
          "wait_all",
          [](Hub& hub, double timeout) {
            nb::gil_scoped_release release;
            return hub.wait_all(std::chrono::milliseconds(static_cast<long long>(timeout * 1000)));
          },
          nb::arg("timeout"))
      .def("alive", &Hub::alive)
      .def_prop_ro("inline_max", [](const Hub& hub) { return hub.options().inline_max; })
      .def_prop_ro("ring_capacity", [](const Hub& hub) { return hub.options().ring_capacity; });
}

}  // namespace multilane::bindings
