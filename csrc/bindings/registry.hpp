// Each bindings file registers itself, so adding an op family never edits module.cpp.
#pragma once
#include <pybind11/pybind11.h>
#include <string>
#include <utility>
#include <vector>

namespace imkern_py {
namespace py = pybind11;
using RegisterFn = void (*)(py::module_&);
std::vector<std::pair<std::string, RegisterFn>>& registry();
struct Registrar {
  Registrar(const char* name, RegisterFn f) { registry().emplace_back(name, f); }
};
}  // namespace imkern_py

#define IMKERN_BINDINGS(name)                                                        \
  static void imkern_bind_##name(pybind11::module_& m);                              \
  static ::imkern_py::Registrar imkern_registrar_##name(#name, &imkern_bind_##name); \
  static void imkern_bind_##name(pybind11::module_& m)
