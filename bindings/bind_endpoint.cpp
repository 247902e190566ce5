// bindings/bind_endpoint.cpp
// Binds Endpoint, a worker's side of its link. Receiving and sending release the GIL.
#include <nanobind/nanobind.h>

#include "bindings.hpp"
#include "convert.hpp"
#include "multilane/link.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

void bind_endpoint(nb::module_& m) {
  nb::class_<Endpoint>(m, "Endpoint", "A worker's side of its link to the parent.")
      .def(
          "__init__",
          [](Endpoint* self, int link_fd, int hub_fd, int socket_fd, double spin_us) {
            SpinPolicy policy;
            policy.spin = std::chrono::nanoseconds(static_cast<long long>(spin_us * 1000));
            new (self) Endpoint(link_fd, hub_fd, socket_fd, policy, &process_arena());
          },
          nb::arg("link_fd"), nb::arg("hub_fd"), nb::arg("socket_fd"), nb::arg("spin_us") = 50.0)
      .def(
          "recv",
          [](Endpoint& ep, const nb::object& timeout) -> nb::object {
            const auto t = to_timeout(timeout);
            Frame frame;
            bool got;
            {
              nb::gil_scoped_release release;
              got = ep.recv(frame, t);
            }
            if (!got) return nb::none();
            return frame_record(frame);
          },
          nb::arg("timeout").none() = nb::none(),
          "The parent's next frame (kind, task_id, aux, flags, payload, attachments), or None.")
      .def(
          "send",
          [](Endpoint& ep, std::uint32_t kind, std::uint64_t task_id, std::uint64_t aux, std::uint32_t flags,
             const nb::bytes& payload) {
            const FrameHeader header{task_id, kind, flags, aux};
            nb::gil_scoped_release release;  // `payload` stays alive: the caller holds it
            ep.send(header, as_span(payload));
          },
          nb::arg("kind"), nb::arg("task_id"), nb::arg("aux"), nb::arg("flags"), nb::arg("payload"))
      .def(
          "send_attached",
          [](Endpoint& ep, std::uint32_t kind, std::uint64_t task_id, std::uint64_t aux, std::uint32_t flags,
             const nb::bytes& payload, const nb::handle& attachments) {
            const FrameHeader header{task_id, kind, flags, aux};
            const std::vector<Attachment> handles = attachments_of(attachments);
            nb::gil_scoped_release release;  // `payload` stays alive: the caller holds it
            ep.send(header, as_span(payload), handles);
          },
          nb::arg("kind"), nb::arg("task_id"), nb::arg("aux"), nb::arg("flags"), nb::arg("payload"),
          nb::arg("attachments"))
      .def("set_running", &Endpoint::set_running, nb::arg("task_id"));
}

}  // namespace multilane::bindings
