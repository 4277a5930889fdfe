// Dtype visitors of the CPU kernels (compiled per ISA): the Python layer has already checked
// the dtype, so the default branch is an assertion, not a user-facing error.
#pragma once
#include <stdexcept>
#include <string>

#include "imkern/common.hpp"

namespace imkern {
namespace IMKERN_ISA {

// Calls f(float{}) or f(double{}) for DType::f32 / DType::f64 (the nn kernels' dtypes).
template <typename F>
inline void visit_float(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    default:
      throw std::invalid_argument(std::string("imkern: dtype ") + dtype_name(dt) +
                                  " is not supported by the CPU nn kernels (float32, float64)");
  }
}

}  // namespace IMKERN_ISA
}  // namespace imkern
