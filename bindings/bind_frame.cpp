// bindings/bind_frame.cpp
// The records a frame and a worker's exit reach Python as: tuples with named fields
// (struct sequences), so Python reads frame.kind, not frame[0], at a tuple's cost.
#include <Python.h>

#include "bindings.hpp"
#include "convert.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

namespace {
PyTypeObject* g_frame_type = nullptr;
PyTypeObject* g_exit_type = nullptr;

PyStructSequence_Field g_frame_fields[] = {
    {"kind", "the frame kind (FrameKind in frame.hpp)"},
    {"task_id", "the task it is about, 0 for none"},
    {"aux", "kind-specific: a function id on CALL, the worker's time in ns on RESULT/ERROR"},
    {"flags", "kind-specific flags"},
    {"payload", "the payload bytes"},
    {"attachments", "a tuple of Attachment objects, or None"},
    {nullptr, nullptr}};
PyStructSequence_Desc g_frame_desc = {"multilane._core.Frame", "A frame received from a ring.",
                                      g_frame_fields, 6};

PyStructSequence_Field g_exit_fields[] = {
    {"kind", "always KIND_EXIT (0), so events can be told apart by kind"},
    {"running_task", "the task id the worker published as running, 0 for none"},
    {"exit_code", "its exit status when it exited"},
    {"signal", "the signal that killed it, 0 if it exited"},
    {"pid", "its process id"},
    {nullptr, nullptr}};
PyStructSequence_Desc g_exit_desc = {"multilane._core.WorkerExit", "A worker process ended.",
                                     g_exit_fields, 5};

PyTypeObject* make_type(PyStructSequence_Desc* desc) {
  PyTypeObject* type = PyStructSequence_NewType(desc);
  if (type == nullptr) throw nb::python_error();
  return type;
}

nb::object new_record(PyTypeObject* type) {
  PyObject* record = PyStructSequence_New(type);
  if (record == nullptr) throw nb::python_error();
  return nb::steal(record);
}
}  // namespace

nb::object frame_record(Frame& f) {
  nb::object attachments = nb::none();
  if (!f.attachments.empty()) {
    nb::list list;
    for (Attachment& a : f.attachments) list.append(nb::cast(std::move(a)));
    attachments = nb::tuple(list);
  }
  nb::object record = new_record(g_frame_type);
  PyObject* r = record.ptr();
  PyStructSequence_SetItem(r, 0, nb::cast(f.header.kind).release().ptr());
  PyStructSequence_SetItem(r, 1, nb::cast(f.header.task_id).release().ptr());
  PyStructSequence_SetItem(r, 2, nb::cast(f.header.aux).release().ptr());
  PyStructSequence_SetItem(r, 3, nb::cast(f.header.flags).release().ptr());
  PyStructSequence_SetItem(
      r, 4,
      nb::bytes(reinterpret_cast<const char*>(f.payload.data()), f.payload.size()).release().ptr());
  PyStructSequence_SetItem(r, 5, attachments.release().ptr());
  return record;
}

nb::object exit_record(std::uint64_t running_task, int exit_code, int exit_signal, int pid) {
  nb::object record = new_record(g_exit_type);
  PyObject* r = record.ptr();
  PyStructSequence_SetItem(r, 0, nb::cast(0).release().ptr());
  PyStructSequence_SetItem(r, 1, nb::cast(running_task).release().ptr());
  PyStructSequence_SetItem(r, 2, nb::cast(exit_code).release().ptr());
  PyStructSequence_SetItem(r, 3, nb::cast(exit_signal).release().ptr());
  PyStructSequence_SetItem(r, 4, nb::cast(pid).release().ptr());
  return record;
}

void bind_frame(nb::module_& m) {
  g_frame_type = make_type(&g_frame_desc);
  g_exit_type = make_type(&g_exit_desc);
  m.attr("Frame") = nb::borrow(reinterpret_cast<PyObject*>(g_frame_type));
  m.attr("WorkerExit") = nb::borrow(reinterpret_cast<PyObject*>(g_exit_type));
}

}  // namespace multilane::bindings
