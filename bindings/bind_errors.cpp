// bindings/bind_errors.cpp
// The one place where C++ exceptions of the core become Python exceptions.
#include <nanobind/nanobind.h>

#include "bindings.hpp"
#include "multilane/platform.hpp"
#include "multilane/ring.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

void bind_errors(nb::module_& m) {
  static nb::object frame_too_large = nb::exception<FrameTooLarge>(m, "FrameTooLarge", PyExc_ValueError);
  static nb::object corrupt_frame = nb::exception<CorruptFrame>(m, "CorruptFrame", PyExc_RuntimeError);
  (void)frame_too_large;
  (void)corrupt_frame;
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const SystemError& e) {
      // OSError(errno, text) picks the right subclass (ProcessLookupError, PermissionError...).
      PyObject* args = Py_BuildValue("(is)", e.code(), e.what());
      PyErr_SetObject(PyExc_OSError, args);
      Py_XDECREF(args);
    }
  });
}

}  // namespace multilane::bindings
