// bindings/bind_heap.cpp
// Binds the process's SharedHeap and offers it to NumPy as a data allocator (NEP 49).
#include <nanobind/nanobind.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bindings.hpp"
#include "multilane/shared_heap.hpp"

namespace nb = nanobind;

namespace multilane::bindings {

namespace {

/// NumPy's PyDataMem_Handler, version 1 (numpy/ndarraytypes.h), declared here so that
/// building multilane needs no NumPy: the layout is part of NumPy's ABI since 1.22, and
/// its PyDataMemAllocator has CAllocator's layout.
struct NumpyHandler {
  char name[127];
  std::uint8_t version;
  CAllocator allocator;
};
static_assert(offsetof(NumpyHandler, allocator) == 128);
static_assert(sizeof(CAllocator) == 5 * sizeof(void*));

// Slots of NumPy's C API table (numpy/__multiarray_api.h), fixed since NumPy 1.22.
constexpr std::size_t kSetHandler = 304;
constexpr std::size_t kDefaultHandler = 306;
constexpr const char* kHandlerCapsule = "mem_handler";

void** numpy_api(const nb::handle& capsule) {
  auto** api = static_cast<void**>(PyCapsule_GetPointer(capsule.ptr(), nullptr));
  if (api == nullptr) throw nb::python_error();
  return api;
}

/// Arrays of 1 MiB or more; live blocks up to a quarter of the descriptor limit.
SharedHeap& process_heap() {
  static SharedHeap* heap = [] {
    struct rlimit files {};
    std::size_t max_blocks = 1024;
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
      max_blocks = std::clamp<std::size_t>(files.rlim_cur / 4, 16, 16384);
    }
    return new SharedHeap(process_arena(), {std::size_t{1} << 20, max_blocks});
  }();
  return *heap;
}

/// The handler capsule NumPy gets; its small requests go to NumPy's default handler.
nb::object numpy_handler(const nb::handle& api_capsule) {
  static NumpyHandler handler{};
  static PyObject* capsule = nullptr;  // never freed: every array made with it refers to it
  if (capsule == nullptr) {
    void** api = numpy_api(api_capsule);
    PyObject* fallback = *static_cast<PyObject**>(api[kDefaultHandler]);
    auto* numpy_default = static_cast<NumpyHandler*>(PyCapsule_GetPointer(fallback, kHandlerCapsule));
    if (numpy_default == nullptr) throw nb::python_error();
    process_heap().set_fallback(numpy_default->allocator);
    std::strncpy(handler.name, "multilane_shared_memory", sizeof handler.name - 1);
    handler.version = 1;
    handler.allocator = process_heap().allocator();
    capsule = PyCapsule_New(&handler, kHandlerCapsule, nullptr);
    if (capsule == nullptr) throw nb::python_error();
  }
  return nb::borrow(capsule);
}

}  // namespace

void bind_heap(nb::module_& m) {
  m.def("numpy_handler", &numpy_handler, nb::arg("api"),
        "multilane's NumPy data allocator (a 'mem_handler' capsule); `api` is NumPy's _ARRAY_API.");
  m.def(
      "numpy_set_handler",
      [](const nb::handle& api_capsule, const nb::handle& handler) {
        using SetHandler = PyObject* (*)(PyObject*);
        auto set = reinterpret_cast<SetHandler>(numpy_api(api_capsule)[kSetHandler]);
        PyObject* previous = set(handler.is_none() ? nullptr : handler.ptr());
        if (previous == nullptr) throw nb::python_error();
        return nb::steal(previous);
      },
      nb::arg("api"), nb::arg("handler").none(),
      "PyDataMem_SetHandler for this thread's context (None: NumPy's default); returns the "
      "previous handler.");
  m.def(
      "heap_share",
      [](const nb::handle& buffer) -> nb::object {
        if (process_heap().empty()) return nb::none();  // the usual case: nothing to look up
        Py_buffer view;
        if (PyObject_GetBuffer(buffer.ptr(), &view, PyBUF_ANY_CONTIGUOUS) != 0) throw nb::python_error();
        std::optional<SharedHeap::Share> share;
        try {
          nb::gil_scoped_release release;  // may read the page table: 2 ms per 256 MB
          share = process_heap().share(view.buf, static_cast<std::size_t>(view.len));
        } catch (...) {
          PyBuffer_Release(&view);
          throw;
        }
        PyBuffer_Release(&view);
        if (!share) return nb::none();
        return nb::make_tuple(nb::cast(std::move(share->block)), share->offset);
      },
      nb::arg("buffer"),
      "(block, offset) if the buffer lies in an allocation of multilane's NumPy allocator that "
      "was not written since it was last sent; else None.");
  m.def("heap_stats", [] {
    const SharedHeap::Stats s = process_heap().stats();
    nb::dict out;
    out["live_blocks"] = s.live_blocks;
    out["live_bytes"] = s.live_bytes;
    out["allocations"] = s.allocations;
    out["declined"] = s.declined;
    out["shares"] = s.shares;
    out["snapshots"] = s.snapshots;
    out["refused"] = s.refused;
    return out;
  });
}

}  // namespace multilane::bindings
