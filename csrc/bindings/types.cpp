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

#include <initializer_list>
#include <utility>

#include "imkern/color.hpp"
#include "imkern/common.hpp"
#include "imkern/filters.hpp"
#include "imkern/nn.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

// An enum exported with its members (the Python names); a binding parameter of its type also
// takes the member's integer code.
template <typename E>
void enum_of(py::module_& m, const char* name, std::initializer_list<std::pair<const char*, E>> members) {
  py::enum_<E> e(m, name);
  for (const auto& [n, v] : members) e.value(n, v);
  py::implicitly_convertible<int, E>();
}

// int64 fields of a descriptor, readable (and writable where `writable`) from Python.
template <typename T>
void fields(py::class_<T>& c, std::initializer_list<std::pair<const char*, int64_t T::*>> f, bool writable) {
  for (const auto& [n, p] : f) {
    if (writable)
      c.def_readwrite(n, p);
    else
      c.def_readonly(n, p);
  }
}

}  // namespace

IMKERN_BINDINGS(types) {
  using imkern::DType;
  enum_of<DType>(m, "DType", {{"uint8", DType::u8}, {"uint16", DType::u16}, {"float32", DType::f32},
      {"float64", DType::f64}, {"float16", DType::f16}, {"bfloat16", DType::bf16}});
  using imkern::Border;
  enum_of<Border>(m, "Border", {{"reflect101", Border::reflect101}, {"reflect", Border::reflect},
      {"replicate", Border::replicate}, {"constant", Border::constant}, {"wrap", Border::wrap}});
  using imkern::Activation;
  enum_of<Activation>(m, "Activation", {{"relu", Activation::relu}, {"leaky_relu", Activation::leaky_relu},
      {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh}, {"gelu", Activation::gelu}});
  using imkern::Reduction;
  enum_of<Reduction>(m, "Reduction", {{"none", Reduction::none}, {"mean", Reduction::mean}, {"sum", Reduction::sum}});
  // The op enums of the families (codes the Python modules read: imkern.color, imkern.filters,
  // imkern.transform).
  using imkern::ColorOp;
  enum_of<ColorOp>(m, "ColorOp", {{"rgb_to_gray", ColorOp::rgb_to_gray}, {"bgr_to_gray", ColorOp::bgr_to_gray},
      {"gray_to_rgb", ColorOp::gray_to_rgb}, {"swap_rb", ColorOp::swap_rb}, {"rgba_to_rgb", ColorOp::rgba_to_rgb},
      {"rgb_to_hsv", ColorOp::rgb_to_hsv}, {"hsv_to_rgb", ColorOp::hsv_to_rgb}, {"rgb_to_ycbcr", ColorOp::rgb_to_ycbcr},
      {"ycbcr_to_rgb", ColorOp::ycbcr_to_rgb}, {"rgb_to_lab", ColorOp::rgb_to_lab},
      {"lab_to_rgb", ColorOp::lab_to_rgb}});
  using imkern::ThreshKind;
  enum_of<ThreshKind>(m, "ThreshKind", {{"binary", ThreshKind::binary}, {"binary_inv", ThreshKind::binary_inv},
      {"trunc", ThreshKind::trunc}, {"tozero", ThreshKind::tozero}, {"tozero_inv", ThreshKind::tozero_inv}});
  using imkern::DerivMode;
  enum_of<DerivMode>(m, "DerivMode", {{"single", DerivMode::single}, {"sum", DerivMode::sum}, {"pair", DerivMode::pair},
      {"mag_l1", DerivMode::mag_l1}, {"mag_l2", DerivMode::mag_l2}});
  using imkern::Interp;
  enum_of<Interp>(m, "Interp", {{"nearest", Interp::nearest}, {"bilinear", Interp::bilinear},
      {"bicubic", Interp::bicubic}});

  using imkern::ImageDesc;
  py::class_<ImageDesc> ImageDesc_cls(m, "ImageDesc", "A batch of images (N, H, W, C), strides in elements.");
  ImageDesc_cls.def(py::init([](int64_t n, int64_t h, int64_t w, int64_t c, int64_t batch_stride, int64_t row_stride) {
             ImageDesc d;
             d.n = n, d.h = h, d.w = w, d.c = c, d.batch_stride = batch_stride, d.row_stride = row_stride;
             return d;
           }),
           py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"), py::arg("batch_stride"), py::arg("row_stride"));
  fields(ImageDesc_cls, {{"n", &ImageDesc::n}, {"h", &ImageDesc::h}, {"w", &ImageDesc::w}, {"c", &ImageDesc::c},
      {"batch_stride", &ImageDesc::batch_stride}, {"row_stride", &ImageDesc::row_stride}}, true);

  using imkern::TensorDesc;
  py::class_<TensorDesc> TensorDesc_cls(m, "TensorDesc", "A tensor (N, C, H, W), x contiguous, strides in elements.");
  TensorDesc_cls.def(py::init([](int64_t n, int64_t c, int64_t h, int64_t w, int64_t batch_stride, int64_t plane_stride,
                       int64_t row_stride) {
             TensorDesc d;
             d.n = n, d.c = c, d.h = h, d.w = w;
             d.batch_stride = batch_stride, d.plane_stride = plane_stride, d.row_stride = row_stride;
             return d;
           }),
           py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("batch_stride"), py::arg("plane_stride"),
           py::arg("row_stride"));
  fields(TensorDesc_cls, {{"n", &TensorDesc::n}, {"c", &TensorDesc::c}, {"h", &TensorDesc::h}, {"w", &TensorDesc::w},
      {"batch_stride", &TensorDesc::batch_stride}, {"plane_stride", &TensorDesc::plane_stride},
      {"row_stride", &TensorDesc::row_stride}}, true);

  using imkern::Conv2dShape;
  py::class_<Conv2dShape> Conv2dShape_cls(m, "Conv2dShape", "One conv2d problem, both devices (imkern/nn.hpp).");
  Conv2dShape_cls.def(py::init([](int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s,
                                 int64_t groups,
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
           py::arg("pr"), py::arg("dh"), py::arg("dw"), py::arg("oh"), py::arg("ow"));
  fields(Conv2dShape_cls, {{"n", &Conv2dShape::n}, {"c", &Conv2dShape::c}, {"h", &Conv2dShape::h},
      {"w", &Conv2dShape::w}, {"k", &Conv2dShape::k}, {"oh", &Conv2dShape::oh}, {"ow", &Conv2dShape::ow}}, false);

  using imkern::Pool2dShape;
  py::class_<Pool2dShape> Pool2dShape_cls(m, "Pool2dShape", "One 2-D pooling problem, both devices (imkern/nn.hpp).");
  Pool2dShape_cls.def(py::init([](int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
             Pool2dShape p;
             p.planes = planes, p.h = h, p.w = w, p.oh = oh, p.ow = ow, p.kh = kh, p.kw = kw;
             p.sh = sh, p.sw = sw, p.ph = ph, p.pw = pw, p.dh = dh, p.dw = dw;
             return p;
           }),
           py::kw_only(), py::arg("planes"), py::arg("h"), py::arg("w"), py::arg("oh"), py::arg("ow"),
           py::arg("kh") = 1, py::arg("kw") = 1, py::arg("sh") = 1, py::arg("sw") = 1, py::arg("ph") = 0,
           py::arg("pw") = 0, py::arg("dh") = 1, py::arg("dw") = 1);
  fields(Pool2dShape_cls, {{"planes", &Pool2dShape::planes}, {"oh", &Pool2dShape::oh},
      {"ow", &Pool2dShape::ow}}, false);
}
