// The descriptors and enums shared by the C++ API of both devices, exported once so that the
// CPU and the CUDA bindings take the same types:
//
// * _core.ImageDesc (imkern/common.hpp), _core.TensorDesc (imkern/transform.hpp),
//   _core.Conv2dShape and _core.Pool2dShape (imkern/nn.hpp): built once in Python (keyword
//   constructors, the C++ field names) and passed to either device's binding;
// * _core.DType, _core.Border, _core.Activation, _core.Reduction, and the families' op enums
//   _core.ColorOp, ThreshKind, DerivMode, Interp: the Python tables of codes
//   (imkern._arrays.DTYPE_CODES, imkern._borders.BORDER_CODES, the nn ops' activation and
//   reduction codes, color's ops, threshold kinds, derivative modes, warp interpolations) are
//   read from these, so the codes have one source. Member names are the
//   Python names (NumPy dtype names, border and activation names, torch's reduction names).
//   A binding parameter of one of these types also accepts the member's integer code.
#include <pybind11/pybind11.h>

#include "imkern/color.hpp"
#include "imkern/common.hpp"
#include "imkern/filters.hpp"
#include "imkern/nn.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

template <typename E>
void accept_codes() {
  py::implicitly_convertible<int, E>();
}

}  // namespace

IMKERN_BINDINGS(types) {
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
  // The op enums of the families (codes the Python modules read: imkern.color, imkern.filters,
  // imkern.transform).
  using imkern::ColorOp;
  py::enum_<ColorOp>(m, "ColorOp")
      .value("rgb_to_gray", ColorOp::rgb_to_gray)
      .value("bgr_to_gray", ColorOp::bgr_to_gray)
      .value("gray_to_rgb", ColorOp::gray_to_rgb)
      .value("swap_rb", ColorOp::swap_rb)
      .value("rgba_to_rgb", ColorOp::rgba_to_rgb)
      .value("rgb_to_hsv", ColorOp::rgb_to_hsv)
      .value("hsv_to_rgb", ColorOp::hsv_to_rgb)
      .value("rgb_to_ycbcr", ColorOp::rgb_to_ycbcr)
      .value("ycbcr_to_rgb", ColorOp::ycbcr_to_rgb)
      .value("rgb_to_lab", ColorOp::rgb_to_lab)
      .value("lab_to_rgb", ColorOp::lab_to_rgb);
  using imkern::ThreshKind;
  py::enum_<ThreshKind>(m, "ThreshKind")
      .value("binary", ThreshKind::binary)
      .value("binary_inv", ThreshKind::binary_inv)
      .value("trunc", ThreshKind::trunc)
      .value("tozero", ThreshKind::tozero)
      .value("tozero_inv", ThreshKind::tozero_inv);
  using imkern::DerivMode;
  py::enum_<DerivMode>(m, "DerivMode")
      .value("single", DerivMode::single)
      .value("sum", DerivMode::sum)
      .value("pair", DerivMode::pair)
      .value("mag_l1", DerivMode::mag_l1)
      .value("mag_l2", DerivMode::mag_l2);
  using imkern::Interp;
  py::enum_<Interp>(m, "Interp")
      .value("nearest", Interp::nearest)
      .value("bilinear", Interp::bilinear)
      .value("bicubic", Interp::bicubic);
  accept_codes<DType>();
  accept_codes<Border>();
  accept_codes<Activation>();
  accept_codes<Reduction>();

  using imkern::ImageDesc;
  py::class_<ImageDesc>(m, "ImageDesc", "A batch of images (N, H, W, C), strides in elements (imkern/common.hpp).")
      .def(py::init([](int64_t n, int64_t h, int64_t w, int64_t c, int64_t batch_stride, int64_t row_stride) {
             ImageDesc d;
             d.n = n, d.h = h, d.w = w, d.c = c, d.batch_stride = batch_stride, d.row_stride = row_stride;
             return d;
           }),
           py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"), py::arg("batch_stride"), py::arg("row_stride"))
      .def_readwrite("n", &ImageDesc::n)
      .def_readwrite("h", &ImageDesc::h)
      .def_readwrite("w", &ImageDesc::w)
      .def_readwrite("c", &ImageDesc::c)
      .def_readwrite("batch_stride", &ImageDesc::batch_stride)
      .def_readwrite("row_stride", &ImageDesc::row_stride);

  using imkern::TensorDesc;
  py::class_<TensorDesc>(m, "TensorDesc", "A tensor (N, C, H, W), x contiguous, strides in elements.")
      .def(py::init([](int64_t n, int64_t c, int64_t h, int64_t w, int64_t batch_stride, int64_t plane_stride,
                       int64_t row_stride) {
             TensorDesc d;
             d.n = n, d.c = c, d.h = h, d.w = w;
             d.batch_stride = batch_stride, d.plane_stride = plane_stride, d.row_stride = row_stride;
             return d;
           }),
           py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("batch_stride"), py::arg("plane_stride"),
           py::arg("row_stride"))
      .def_readwrite("n", &TensorDesc::n)
      .def_readwrite("c", &TensorDesc::c)
      .def_readwrite("h", &TensorDesc::h)
      .def_readwrite("w", &TensorDesc::w)
      .def_readwrite("batch_stride", &TensorDesc::batch_stride)
      .def_readwrite("plane_stride", &TensorDesc::plane_stride)
      .def_readwrite("row_stride", &TensorDesc::row_stride);

  using imkern::Conv2dShape;
  py::class_<Conv2dShape>(m, "Conv2dShape", "One conv2d problem, both devices (imkern/nn.hpp).")
      .def(py::init([](int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, int64_t groups,
                       int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw,
                       int64_t oh, int64_t ow) {
             Conv2dShape x;
             x.n = n, x.c = c, x.h = h, x.w = w, x.k = k, x.r = r, x.s = s, x.groups = groups;
             x.sh = sh, x.sw = sw, x.pt = pt, x.pb = pb, x.pl = pl, x.pr = pr, x.dh = dh, x.dw = dw;
             x.oh = oh, x.ow = ow;
             return x;
           }),
           py::kw_only(), py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("k"), py::arg("r"),
           py::arg("s"), py::arg("groups"), py::arg("sh"), py::arg("sw"), py::arg("pt"), py::arg("pb"), py::arg("pl"),
           py::arg("pr"), py::arg("dh"), py::arg("dw"), py::arg("oh"), py::arg("ow"))
      .def_readonly("n", &Conv2dShape::n)
      .def_readonly("c", &Conv2dShape::c)
      .def_readonly("h", &Conv2dShape::h)
      .def_readonly("w", &Conv2dShape::w)
      .def_readonly("k", &Conv2dShape::k)
      .def_readonly("oh", &Conv2dShape::oh)
      .def_readonly("ow", &Conv2dShape::ow);

  using imkern::Pool2dShape;
  py::class_<Pool2dShape>(m, "Pool2dShape", "One 2-D pooling problem, both devices (imkern/nn.hpp).")
      .def(py::init([](int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
             Pool2dShape p;
             p.planes = planes, p.h = h, p.w = w, p.oh = oh, p.ow = ow, p.kh = kh, p.kw = kw;
             p.sh = sh, p.sw = sw, p.ph = ph, p.pw = pw, p.dh = dh, p.dw = dw;
             return p;
           }),
           py::kw_only(), py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("oh"), py::arg("ow"),
           py::arg("kh") = 1, py::arg("kw") = 1, py::arg("sh") = 1, py::arg("sw") = 1, py::arg("ph") = 0,
           py::arg("pw") = 0, py::arg("dh") = 1, py::arg("dw") = 1)
      .def_readonly("planes", &Pool2dShape::planes)
      .def_readonly("oh", &Pool2dShape::oh)
      .def_readonly("ow", &Pool2dShape::ow);
}
