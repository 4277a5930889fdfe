// The enums shared by the C++ API of both devices (imkern/common.hpp, imkern/nn.hpp), exported
// once as _core.DType, _core.Border, _core.Activation, _core.Reduction. The Python tables of
// codes (imkern._arrays.DTYPE_CODES, imkern._borders.BORDER_CODES, the nn ops' activation and
// reduction codes) are read from these, so the codes have one source. Member names are the
// Python names (NumPy dtype names, border and activation names, torch's reduction names).
#include <pybind11/pybind11.h>

#include "imkern/common.hpp"
#include "imkern/nn.hpp"
#include "registry.hpp"

namespace py = pybind11;

IMKERN_BINDINGS(enums) {
  using imkern::DType;
  py::enum_<DType>(m, "DType")
      .value("uint8", DType::u8)
      .value("uint16", DType::u16)
      .value("float32", DType::f32)
      .value("float64", DType::f64)
      .value("float16", DType::f16)
      .value("bfloat16", DType::bf16);
  using imkern::Border;
  py::enum_<Border>(m, "Border")
      .value("reflect101", Border::reflect101)
      .value("reflect", Border::reflect)
      .value("replicate", Border::replicate)
      .value("constant", Border::constant)
      .value("wrap", Border::wrap);
  using imkern::Activation;
  py::enum_<Activation>(m, "Activation")
      .value("relu", Activation::relu)
      .value("leaky_relu", Activation::leaky_relu)
      .value("sigmoid", Activation::sigmoid)
      .value("tanh", Activation::tanh)
      .value("gelu", Activation::gelu);
  using imkern::Reduction;
  py::enum_<Reduction>(m, "Reduction")
      .value("none", Reduction::none)
      .value("mean", Reduction::mean)
      .value("sum", Reduction::sum);
}
