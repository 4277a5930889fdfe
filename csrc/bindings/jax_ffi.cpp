// XLA FFI handlers for imkern.jax (jax.ffi.ffi_call): the linear filters, the CNN ops with their
// backward kernels, and the image ops (median, morphology, Sobel, resize, color). One handler
// per op serves both platforms: registered for "cpu" (imkern's dispatched CPU kernels, its own
// thread pool) and, in CUDA builds, for "CUDA" (the same launchers CuPy arrays get, on XLA's
// stream). CPU and CUDA branches sit side by side in each op's function.
//
// Every handler has the same binding: all operands, all results and the attribute dictionary
// (RemainingArgs / RemainingRets / Attrs), decoded through one helper (`Call`) that names the
// op in its errors. XLA's buffers are dense row-major (the default layout of custom-call
// operands), which is what the CPU kernels' C-contiguous paths read.
//
// Batching (jax.vmap, vmap_method="expand_dims"): each operand and result has a core rank (the
// dimensions the op itself takes); dimensions in front of it are a batch. A batched operand has
// the batch's size there, an unbatched one size-1 dimensions. Images fold the batch into N, as
// the CNN forward ops do when their parameters are shared; otherwise (per-example parameters,
// the backward ops whose parameter gradients are per example, batch norm's per-example
// statistics) the handler calls the kernel once per batch element.
//
// Python (imkern.jax) validates the arguments; the handlers re-check what would be memory
// unsafe and return InvalidArgument. Exported as PyCapsules (`_core.jax_ffi_handlers()`:
// {platform: {target name: capsule}}) for jax.ffi.register_ffi_target. Built against the
// vendored header-only FFI API in csrc/third_party/xla (no JAX at build time).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "imkern/color.hpp"
#include "imkern/filters.hpp"
#include "imkern/nn.hpp"
#include "imkern/transform.hpp"
#include "registry.hpp"
#include "xla/ffi/api/ffi.h"

#if defined(IMKERN_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace ffi = xla::ffi;
namespace py = pybind11;
using imkern::Border;
using imkern::DType;
using imkern::ImageDesc;

namespace {

// ---- decoding: one helper for every handler's operands, results and attributes -----------------

struct Invalid : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// One buffer as the kernels see it.
struct Buf {
  void* p = nullptr;
  ffi::DataType et{};
  std::vector<int64_t> dims;
  int64_t count = 0;
  int64_t item = 0;

  int rank() const { return static_cast<int>(dims.size()); }
  int64_t dim(int i) const { return dims[static_cast<size_t>(i < 0 ? rank() + i : i)]; }
  // The product of the dimensions in front of the last `core` ones (a vmap batch; 1 if none).
  int64_t lead(int core) const {
    if (rank() < core) throw Invalid("buffer of rank " + std::to_string(rank()) + " below core rank " + std::to_string(core));
    int64_t n = 1;
    for (int i = 0; i < rank() - core; ++i) n *= dims[static_cast<size_t>(i)];
    return n;
  }
  int64_t core_count(int core) const {
    int64_t n = 1;
    for (int i = rank() - core; i < rank(); ++i) n *= dims[static_cast<size_t>(i)];
    return n;
  }
  // Batch element b's data (a shared buffer, lead 1, is every element's).
  void* at(int core, int64_t b) const {
    return lead(core) == 1 ? p : static_cast<char*>(p) + b * core_count(core) * item;
  }
};

bool dtype_of(ffi::DataType t, DType* out) {
  switch (t) {
    case ffi::DataType::U8: *out = DType::u8; return true;
    case ffi::DataType::U16: *out = DType::u16; return true;
    case ffi::DataType::F32: *out = DType::f32; return true;
    case ffi::DataType::F64: *out = DType::f64; return true;
    case ffi::DataType::F16: *out = DType::f16; return true;
    case ffi::DataType::BF16: *out = DType::bf16; return true;
    default: return false;
  }
}

Buf buf_of(const ffi::AnyBuffer& b) {
  Buf r;
  r.p = b.untyped_data();
  r.et = b.element_type();
  auto d = b.dimensions();
  r.dims.assign(d.begin(), d.end());
  r.count = static_cast<int64_t>(b.element_count());
  r.item = r.count ? static_cast<int64_t>(b.size_bytes()) / r.count : 0;
  return r;
}

struct Call {
  const char* op;
  ffi::RemainingArgs args;
  ffi::RemainingRets rets;
  ffi::Dictionary attrs;
  void* stream = nullptr;                     // XLA's CUDA stream; null on the CPU
  ffi::ScratchAllocator* scratch = nullptr;  // XLA's device scratch memory (CUDA)
  bool cuda() const { return stream != nullptr; }

  Buf in(size_t i) const {
    auto b = args.get<ffi::AnyBuffer>(i);
    if (b.has_error()) throw Invalid("operand " + std::to_string(i) + " missing or not a buffer");
    return buf_of(*b);
  }
  Buf out(size_t i) const {
    auto b = rets.get<ffi::AnyBuffer>(i);
    if (b.has_error()) throw Invalid("result " + std::to_string(i) + " missing or not a buffer");
    return buf_of(**b);
  }
  template <typename T>
  T attr(const char* name) const {
    auto v = attrs.get<T>(name);
    if (v.has_error()) throw Invalid(std::string("attribute '") + name + "' missing or of the wrong type");
    return *v;
  }
  int64_t i64(const char* name) const { return attr<int64_t>(name); }
  bool flag(const char* name) const { return attr<int64_t>(name) != 0; }
  double f64(const char* name) const { return attr<double>(name); }
  ffi::Span<const double> f64s(const char* name) const { return attr<ffi::Span<const double>>(name); }
  ffi::Span<const int64_t> i64s(const char* name, size_t n = 0) const {
    auto s = attr<ffi::Span<const int64_t>>(name);
    if (n && s.size() != n) throw Invalid(std::string("attribute '") + name + "' must hold " + std::to_string(n) + " values");
    return s;
  }
  int int32(const char* name) const {
    const int64_t v = i64(name);
    if (v < INT32_MIN || v > INT32_MAX) throw Invalid(std::string("attribute '") + name + "' out of range");
    return static_cast<int>(v);
  }
};

// The batch size of operands/results with the given core ranks: each leading product is 1 or B.
int64_t batch_of(std::initializer_list<std::pair<const Buf*, int>> bs) {
  int64_t b = 1;
  for (auto& [buf, core] : bs) b = std::max(b, buf->lead(core));
  for (auto& [buf, core] : bs)
    if (buf->lead(core) != 1 && buf->lead(core) != b) throw Invalid("operands batched by different sizes");
  return b;
}

DType float_dtype(const Buf& b, const char* name) {
  DType dt;
  if (!dtype_of(b.et, &dt) || dt == DType::u8 || dt == DType::u16)
    throw Invalid(std::string(name) + ": expected a float dtype");
  return dt;
}

void same_dtype(const Buf& a, const Buf& b, const char* name) {
  if (a.et != b.et) throw Invalid(std::string(name) + ": dtype differs");
}

void expect_dims(const Buf& b, int core, std::initializer_list<int64_t> want, const char* name) {
  if (b.rank() < core || !std::equal(b.dims.end() - core, b.dims.end(), want.begin(), want.end()))
    throw Invalid(std::string(name) + ": unexpected shape");
}

// The ImageDesc of a row-major buffer whose last `image_rank` (2 or 3) dimensions are the image;
// every leading dimension folds into N.
ImageDesc image_of(const Buf& b, int64_t image_rank) {
  if ((image_rank != 2 && image_rank != 3) || b.rank() < image_rank)
    throw Invalid("image_rank must be 2 or 3 and at most the buffer's rank");
  ImageDesc d;
  d.n = b.lead(static_cast<int>(image_rank));
  d.h = b.dim(-static_cast<int>(image_rank));
  d.w = b.dim(-static_cast<int>(image_rank) + 1);
  d.c = image_rank == 3 ? b.dim(-1) : 1;
  d.row_stride = d.w * d.c;
  d.batch_stride = d.h * d.row_stride;
  return d;
}

Border border_of(int64_t b) {
  if (b < 0 || b > 4) throw Invalid("unknown border code");
  return static_cast<Border>(b);
}

// An image op's source and destination: pixel dtypes and descriptors, same N, H, W.
struct ImagePair {
  Buf src, dst;
  DType dt, od;
  ImageDesc s, d;
};
ImagePair image_pair(const Call& c, bool same_size = true) {
  ImagePair r{c.in(0), c.out(0), {}, {}, {}, {}};
  if (!dtype_of(r.src.et, &r.dt) || !dtype_of(r.dst.et, &r.od))
    throw Invalid("image dtype must be uint8, uint16, float32 or float64");
  const int64_t rank = c.i64("image_rank");
  r.s = image_of(r.src, rank);
  r.d = image_of(r.dst, rank);
  if (r.s.n != r.d.n || (same_size && (r.s.h != r.d.h || r.s.w != r.d.w)))
    throw Invalid("output and image differ in size");
  return r;
}

#if defined(IMKERN_WITH_CUDA)
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void copy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, void* stream) {
  if (bytes) cuda_check(cudaMemcpyAsync(dst, src, bytes, kind, static_cast<cudaStream_t>(stream)), "cudaMemcpyAsync");
}
#define IMKERN_NO_CUDA(c)
#else
#define IMKERN_NO_CUDA(c) \
  if ((c).cuda()) throw std::runtime_error("this imkern build has no CUDA kernels")
#endif

// ---- linear filters ------------------------------------------------------------------------------
// Operands: the image, then the taps as device operands of the accumulation dtype (what the CUDA
// kernels read; float64 for float64 data, else float32); attributes: the taps again as float64
// (what the CPU kernels take), image_rank, border, cval.

#if defined(IMKERN_WITH_CUDA)
const void* device_taps(const Buf& w, DType dt, DType od, size_t n) {
  const bool f64 = dt == DType::f64 || od == DType::f64;
  if (w.et != (f64 ? ffi::DataType::F64 : ffi::DataType::F32))
    throw Invalid("device taps must be float64 for float64 data, else float32");
  if (static_cast<size_t>(w.count) < n) throw Invalid("too few device taps");
  return w.p;
}
#endif

void check_out_dtype(const ImagePair& io) {
  if (io.od != io.dt && io.od != DType::f32 && io.od != DType::f64)
    throw Invalid("output dtype must be the image's, float32 or float64");
}

void sep_filter_op(const Call& c) {
  const ImagePair io = image_pair(c);
  check_out_dtype(io);
  const auto ky = c.f64s("kernel_y"), kx = c.f64s("kernel_x");
  if (ky.size() == 0 || kx.size() == 0) throw Invalid("empty kernel");
  const int kh = static_cast<int>(ky.size()), kw = static_cast<int>(kx.size());
  const Border b = border_of(c.i64("border"));
  const double cval = c.f64("cval");
  if (io.src.count == 0) return;
  if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
    imkern::cuda::sep_filter_cuda(io.dt, io.src.p, io.s, io.od, io.dst.p, io.d,
                                  device_taps(c.in(1), io.dt, io.od, ky.size()), kh, kh / 2,
                                  device_taps(c.in(2), io.dt, io.od, kx.size()), kw, kw / 2, b, cval, c.stream);
#endif
    return;
  }
  IMKERN_CALL(sep_filter, io.dt, io.src.p, io.s, io.od, io.dst.p, io.d, ky.begin(), kh, kh / 2, kx.begin(), kw,
              kw / 2, b, cval);
}

void correlate_op(const Call& c) {
  const ImagePair io = image_pair(c);
  check_out_dtype(io);
  const auto k = c.f64s("kernel");
  const int kh = c.int32("kh"), kw = c.int32("kw");
  if (kh < 1 || kw < 1 || static_cast<int64_t>(k.size()) != int64_t{kh} * kw)
    throw Invalid("kernel size does not match (kh, kw)");
  const Border b = border_of(c.i64("border"));
  const double cval = c.f64("cval");
  if (io.src.count == 0) return;
  if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
    imkern::cuda::correlate_cuda(io.dt, io.src.p, io.s, io.od, io.dst.p, io.d,
                                 device_taps(c.in(1), io.dt, io.od, k.size()), kh, kw, kh / 2, kw / 2, b, cval,
                                 c.stream);
#endif
    return;
  }
  IMKERN_CALL(correlate, io.dt, io.src.p, io.s, io.od, io.dst.p, io.d, k.begin(), kh, kw, kh / 2, kw / 2, b, cval);
}

// ---- image ops -----------------------------------------------------------------------------------

void median_op(const Call& c) {
  const ImagePair io = image_pair(c);
  if (io.od != io.dt) throw Invalid("output dtype differs from the image's");
  const int k = c.int32("size");
  if (k < 1 || k % 2 == 0) throw Invalid("size must be odd and positive");
  const Border b = border_of(c.i64("border"));
  const double cval = c.f64("cval");
  if (io.src.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) return imkern::cuda::median_cuda(io.dt, io.src.p, io.s, io.dst.p, io.d, k, b, cval, c.stream);
#endif
  IMKERN_CALL(median, io.dt, io.src.p, io.s, io.dst.p, io.d, k, b, cval);
}

void morphology_op(const Call& c) {
  const ImagePair io = image_pair(c);
  if (io.od != io.dt) throw Invalid("output dtype differs from the image's");
  const auto fp = c.attr<ffi::Span<const uint8_t>>("footprint");
  const int fh = c.int32("fh"), fw = c.int32("fw"), ay = c.int32("ay"), ax = c.int32("ax");
  if (fh < 1 || fw < 1 || static_cast<int64_t>(fp.size()) != int64_t{fh} * fw || ay < 0 || ay >= fh || ax < 0 ||
      ax >= fw)
    throw Invalid("footprint does not match (fh, fw) and its anchor");
  const bool dilate = c.flag("dilate");
  const Border b = border_of(c.i64("border"));
  const double cval = c.f64("cval");
  if (io.src.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda())
    return imkern::cuda::morphology_cuda(io.dt, io.src.p, io.s, io.dst.p, io.d, fp.begin(), fh, fw, ay, ax, dilate, b,
                                         cval, c.stream);
#endif
  IMKERN_CALL(morphology, io.dt, io.src.p, io.s, io.dst.p, io.d, fp.begin(), fh, fw, ay, ax, dilate, b, cval);
}

// One derivative filter (DerivMode::single): out = (ky (x) kx) * image + delta, float32 out
// (float64 for float64 images). Host taps on both devices (the CUDA kernels keep them in
// constant memory).
void deriv_op(const Call& c) {
  const ImagePair io = image_pair(c);
  if (io.od != (io.dt == DType::f64 ? DType::f64 : DType::f32)) throw Invalid("output dtype must be float32 (float64)");
  const auto kx = c.f64s("kernel_x"), ky = c.f64s("kernel_y");
  if (kx.size() == 0 || ky.size() == 0 || kx.size() % 2 == 0 || ky.size() % 2 == 0) throw Invalid("bad taps");
  const int kw = static_cast<int>(kx.size()), kh = static_cast<int>(ky.size());
  const Border b = border_of(c.i64("border"));
  const double delta = c.f64("delta"), cval = c.f64("cval");
  if (io.src.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) {
    if (kw > imkern::cuda::kMaxDerivTaps || kh > imkern::cuda::kMaxDerivTaps) throw Invalid("too many taps for CUDA");
    return imkern::cuda::deriv_filter_cuda(io.dt, io.src.p, io.s, io.dst.p, io.d, nullptr, io.d, kx.begin(),
                                           ky.begin(), kx.begin(), ky.begin(), kw, kh, imkern::DerivMode::single,
                                           delta, b, cval, c.stream);
  }
#endif
  IMKERN_CALL(deriv_filter, io.dt, io.src.p, io.s, io.dst.p, io.d, nullptr, io.d, kx.begin(), ky.begin(), kx.begin(),
              ky.begin(), kw, kh, imkern::DerivMode::single, delta, b, cval);
}

void color_op(const Call& c) {
  using imkern::ColorOp;
  const ImagePair io = image_pair(c);
  if (io.od != io.dt) throw Invalid("output dtype differs from the image's");
  const int64_t code = c.i64("op");
  if (code < 0 || code > static_cast<int64_t>(ColorOp::lab_to_rgb)) throw Invalid("unknown color op");
  const ColorOp op = static_cast<ColorOp>(code);
  const int64_t ci = io.s.c, co = io.d.c;
  bool ok;
  switch (op) {
    case ColorOp::rgb_to_gray:
    case ColorOp::bgr_to_gray: ok = (ci == 3 || ci == 4) && co == 1; break;
    case ColorOp::gray_to_rgb: ok = ci == 1 && co == 3; break;
    case ColorOp::swap_rb: ok = (ci == 3 || ci == 4) && co == ci; break;
    case ColorOp::rgba_to_rgb: ok = ci == 4 && co == 3; break;
    default: ok = ci == 3 && co == 3; break;
  }
  if (!ok) throw Invalid("wrong channel counts for this conversion");
  imkern::ColorParams p;
  p.blend = c.flag("blend");
  const auto bg = c.f64s("bg");
  if (bg.size() != 3) throw Invalid("bg must hold 3 values");
  std::copy(bg.begin(), bg.end(), p.bg);
  if (io.src.count == 0) return;
  const void* sp = io.src.p;
  void* dp = io.dst.p;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  namespace kc = imkern::cuda;
  if (c.cuda()) {
    switch (op) {
      case ColorOp::rgb_to_gray:
      case ColorOp::bgr_to_gray:
      case ColorOp::gray_to_rgb: return kc::color_gray_cuda(op, io.dt, sp, io.s, dp, io.d, c.stream);
      case ColorOp::swap_rb:
      case ColorOp::rgba_to_rgb: return kc::color_channels_cuda(op, io.dt, sp, io.s, dp, io.d, p, c.stream);
      case ColorOp::rgb_to_hsv:
      case ColorOp::hsv_to_rgb: return kc::color_hsv_cuda(op, io.dt, sp, io.s, dp, io.d, c.stream);
      case ColorOp::rgb_to_ycbcr:
      case ColorOp::ycbcr_to_rgb: return kc::color_ycbcr_cuda(op, io.dt, sp, io.s, dp, io.d, c.stream);
      case ColorOp::rgb_to_lab:
      case ColorOp::lab_to_rgb: return kc::color_lab_cuda(op, io.dt, sp, io.s, dp, io.d, c.stream);
    }
  }
#endif
  switch (op) {
    case ColorOp::rgb_to_gray:
    case ColorOp::bgr_to_gray:
    case ColorOp::gray_to_rgb: IMKERN_CALL(color_gray, op, io.dt, sp, io.s, dp, io.d); break;
    case ColorOp::swap_rb:
    case ColorOp::rgba_to_rgb: IMKERN_CALL(color_channels, op, io.dt, sp, io.s, dp, io.d, p); break;
    case ColorOp::rgb_to_hsv:
    case ColorOp::hsv_to_rgb: IMKERN_CALL(color_hsv, op, io.dt, sp, io.s, dp, io.d); break;
    case ColorOp::rgb_to_ycbcr:
    case ColorOp::ycbcr_to_rgb: IMKERN_CALL(color_ycbcr, op, io.dt, sp, io.s, dp, io.d); break;
    case ColorOp::rgb_to_lab:
    case ColorOp::lab_to_rgb: IMKERN_CALL(color_lab, op, io.dt, sp, io.s, dp, io.d); break;
  }
}

// Resize: the tables (built by imkern.transform's Python layer) arrive as attributes: per axis
// the int64 start of each output's taps and the taps (int32 fixed point for uint8, float32 or
// float64), or the int64 source index of each output (nearest). The CUDA kernels read them on
// the device: copied there into XLA scratch memory first.
struct HostTable {
  ffi::Span<const int64_t> start;
  const void* w = nullptr;
  size_t w_bytes = 0;
  int64_t k = 0;
};

HostTable table_attr(const Call& c, const char* axis, int64_t n, int64_t src_len, DType dt) {
  HostTable t;
  const std::string a(axis);
  t.start = c.i64s((a + "_start").c_str());
  t.k = c.i64((a + "_taps").c_str());
  if (static_cast<int64_t>(t.start.size()) != n || t.k < 1) throw Invalid("resize: table size differs from the output");
  for (int64_t s : t.start)
    if (s < 0 || s + t.k > src_len) throw Invalid("resize: table reaches outside the source");
  const std::string wn = a + "_weights";
  if (dt == DType::u8) {
    auto w = c.attr<ffi::Span<const int32_t>>(wn.c_str());
    t.w = w.begin(), t.w_bytes = w.size() * 4;
  } else if (dt == DType::f64) {
    auto w = c.attr<ffi::Span<const double>>(wn.c_str());
    t.w = w.begin(), t.w_bytes = w.size() * 8;
  } else {
    auto w = c.attr<ffi::Span<const float>>(wn.c_str());
    t.w = w.begin(), t.w_bytes = w.size() * 4;
  }
  const size_t item = dt == DType::f64 ? 8 : 4;
  if (t.w_bytes != static_cast<size_t>(n * t.k) * item) throw Invalid("resize: weight table size");
  return t;
}

void resize_op(const Call& c) {
  const ImagePair io = image_pair(c, false);
  if (io.od != io.dt) throw Invalid("output dtype differs from the image's");
  const bool nearest = c.flag("nearest");
  if (nearest) {
    const auto iy = c.i64s("y_index"), ix = c.i64s("x_index");
    if (static_cast<int64_t>(iy.size()) != io.d.h || static_cast<int64_t>(ix.size()) != io.d.w)
      throw Invalid("resize: index table sizes differ from the output");
    for (int64_t v : iy)
      if (v < 0 || v >= io.s.h) throw Invalid("resize: y index out of range");
    for (int64_t v : ix)
      if (v < 0 || v >= io.s.w) throw Invalid("resize: x index out of range");
    if (io.dst.count == 0) return;
    IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
    if (c.cuda()) {
      auto mem = c.scratch->Allocate((iy.size() + ix.size()) * 8, 16);
      if (!mem) throw std::runtime_error("resize: no scratch memory");
      auto* dy = static_cast<int64_t*>(*mem);
      copy_async(dy, iy.begin(), iy.size() * 8, cudaMemcpyHostToDevice, c.stream);
      copy_async(dy + iy.size(), ix.begin(), ix.size() * 8, cudaMemcpyHostToDevice, c.stream);
      return imkern::cuda::resize_nearest_cuda(io.dt, io.src.p, io.s, io.dst.p, io.d, dy, dy + iy.size(), c.stream);
    }
#endif
    IMKERN_CALL(resize_nearest, io.dt, io.src.p, io.s, io.dst.p, io.d, iy.begin(), ix.begin());
    return;
  }
  if (io.dt != DType::u8 && io.dt != DType::u16 && io.dt != DType::f32 && io.dt != DType::f64)
    throw Invalid("resize: dtype");
  // uint16 images use float32 tables (as imkern.transform does).
  const DType tdt = io.dt == DType::u16 ? DType::f32 : io.dt;
  const HostTable ty = table_attr(c, "y", io.d.h, io.s.h, tdt), tx = table_attr(c, "x", io.d.w, io.s.w, tdt);
  const int ybits = c.int32("y_bits"), xbits = c.int32("x_bits"), shift = c.int32("shift");
  if (shift < 0 || shift > ybits) throw Invalid("resize: shift out of range");
  imkern::ResizeTable y{io.d.h, static_cast<int>(ty.k), ty.start.begin(), ty.w, ybits};
  imkern::ResizeTable x{io.d.w, static_cast<int>(tx.k), tx.start.begin(), tx.w, xbits};
  if (io.dst.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) {
    const size_t sy = ty.start.size() * 8, sx = tx.start.size() * 8;
    auto rnd = [](size_t v) { return (v + 15) / 16 * 16; };
    auto mem = c.scratch->Allocate(rnd(sy) + rnd(sx) + rnd(ty.w_bytes) + rnd(tx.w_bytes), 16);
    if (!mem) throw std::runtime_error("resize: no scratch memory");
    char* d = static_cast<char*>(*mem);
    char *dys = d, *dxs = dys + rnd(sy), *dyw = dxs + rnd(sx), *dxw = dyw + rnd(ty.w_bytes);
    copy_async(dys, ty.start.begin(), sy, cudaMemcpyHostToDevice, c.stream);
    copy_async(dxs, tx.start.begin(), sx, cudaMemcpyHostToDevice, c.stream);
    copy_async(dyw, ty.w, ty.w_bytes, cudaMemcpyHostToDevice, c.stream);
    copy_async(dxw, tx.w, tx.w_bytes, cudaMemcpyHostToDevice, c.stream);
    y.start = reinterpret_cast<const int64_t*>(dys), y.w = dyw;
    x.start = reinterpret_cast<const int64_t*>(dxs), x.w = dxw;
    return imkern::cuda::resize_cuda(io.dt, io.src.p, io.s, io.dst.p, io.d, y, x, shift, c.stream);
  }
#endif
  IMKERN_CALL(resize, io.dt, io.src.p, io.s, io.dst.p, io.d, y, x, shift);
}

// ---- CNN ops (NCHW, PyTorch semantics) -----------------------------------------------------------

imkern::Conv2dShape conv_shape(const Call& c, const Buf& x, const Buf& w, const Buf& y) {
  imkern::Conv2dShape s;
  s.n = x.dim(-4), s.c = x.dim(-3), s.h = x.dim(-2), s.w = x.dim(-1);
  s.k = w.dim(-4), s.r = w.dim(-2), s.s = w.dim(-1);
  s.groups = c.i64("groups");
  const auto st = c.i64s("stride", 2), pd = c.i64s("padding", 4), dl = c.i64s("dilation", 2);
  s.sh = st[0], s.sw = st[1], s.pt = pd[0], s.pb = pd[1], s.pl = pd[2], s.pr = pd[3], s.dh = dl[0], s.dw = dl[1];
  s.oh = y.dim(-2), s.ow = y.dim(-1);
  if (s.groups < 1 || s.c % s.groups || s.k % s.groups || w.dim(-3) != s.c / s.groups || s.r < 1 || s.s < 1)
    throw Invalid("conv2d: inconsistent channels, groups or kernel size");
  if (s.sh < 1 || s.sw < 1 || s.dh < 1 || s.dw < 1 || s.pt < 0 || s.pb < 0 || s.pl < 0 || s.pr < 0)
    throw Invalid("conv2d: stride/dilation must be positive and padding non-negative");
  const int64_t eh = s.h + s.pt + s.pb - s.dh * (s.r - 1) - 1, ew = s.w + s.pl + s.pr - s.dw * (s.s - 1) - 1;
  if (eh < 0 || ew < 0 || s.oh != eh / s.sh + 1 || s.ow != ew / s.sw + 1 || y.dim(-4) != s.n || y.dim(-3) != s.k)
    throw Invalid("conv2d: output size differs from the shape formula");
  return s;
}

imkern::ConvWinograd winograd_of(const Call& c) {
  const int64_t v = c.i64("winograd");
  if (v < 0 || v > 2) throw Invalid("winograd: expected 0, 1 or 2");
  return static_cast<imkern::ConvWinograd>(v);
}

// Operands x (N, C, H, W), weight (K, C / groups, R, S)[, bias (K,)]; result (N, K, OH, OW).
void conv2d_op(const Call& c) {
  const Buf x = c.in(0), w = c.in(1), y = c.out(0);
  const bool has_bias = c.flag("has_bias");
  const Buf b = has_bias ? c.in(2) : Buf{};
  const DType dt = float_dtype(x, "x");
  same_dtype(x, w, "weight"), same_dtype(x, y, "out");
  if (has_bias) same_dtype(x, b, "bias");
  imkern::Conv2dShape s = conv_shape(c, x, w, y);
  const int64_t bn = has_bias ? batch_of({{&x, 4}, {&w, 4}, {&b, 1}, {&y, 4}}) : batch_of({{&x, 4}, {&w, 4}, {&y, 4}});
  if (has_bias && b.dim(-1) != s.k) throw Invalid("bias: expected K values");
  const bool relu = c.flag("relu");
  // Shared parameters: the whole batch is one call (N folded).
  const bool fold = w.lead(4) == 1 && (!has_bias || b.lead(1) == 1) && x.lead(4) == y.lead(4);
  const int64_t calls = fold ? 1 : bn;
  if (fold) s.n *= bn;
  if (y.count == 0) return;
  for (int64_t i = 0; i < calls; ++i) {
    const void* bp = has_bias ? b.at(1, i) : nullptr;
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      imkern::cuda::conv2d_forward_cuda(dt, s, x.at(4, i), w.at(4, i), bp, relu, y.at(4, i), c.flag("allow_tf32"),
                                        c.stream);
#endif
    } else {
      IMKERN_CALL(conv2d_forward, dt, x.at(4, i), w.at(4, i), bp, y.at(4, i), s, relu, winograd_of(c));
    }
  }
}

// Operands grad_output, x, weight; results grad_input, grad_weight, grad_bias (one call per
// batch element: per-example parameter gradients under vmap).
void conv2d_backward_op(const Call& c) {
  const Buf go = c.in(0), x = c.in(1), w = c.in(2), gi = c.out(0), gw = c.out(1), gb = c.out(2);
  const DType dt = float_dtype(x, "x");
  for (const Buf* t : {&go, &w, &gi, &gw, &gb}) same_dtype(x, *t, "conv2d_backward operand");
  const imkern::Conv2dShape s = conv_shape(c, x, w, go);
  const int64_t bn = batch_of({{&go, 4}, {&x, 4}, {&w, 4}, {&gi, 4}, {&gw, 4}, {&gb, 1}});
  expect_dims(gi, 4, {s.n, s.c, s.h, s.w}, "grad_input");
  expect_dims(gw, 4, {s.k, s.c / s.groups, s.r, s.s}, "grad_weight");
  expect_dims(gb, 1, {s.k}, "grad_bias");
  if (gi.lead(4) != bn || gw.lead(4) != bn || gb.lead(1) != bn) throw Invalid("gradients must carry the batch");
  for (int64_t i = 0; i < bn; ++i) {
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      const bool tf32 = c.flag("allow_tf32");
      namespace kc = imkern::cuda;
      if (s.n * s.c * s.h * s.w != 0)
        kc::conv2d_backward_data_cuda(dt, s, go.at(4, i), w.at(4, i), gi.at(4, i), tf32, c.stream);
      kc::conv2d_backward_weight_cuda(dt, s, go.at(4, i), x.at(4, i), gw.at(4, i), tf32, c.stream);
      kc::channel_sum_cuda(dt, s.n, s.k, s.oh * s.ow, go.at(4, i), gb.at(1, i), c.stream);
#endif
    } else {
      IMKERN_CALL(conv2d_backward, dt, go.at(4, i), x.at(4, i), w.at(4, i), gi.at(4, i), gw.at(4, i), gb.at(1, i), s,
                  winograd_of(c));
    }
  }
}

// Operands x (M, IN), weight (OUT, IN)[, bias (OUT,)]; result (M, OUT).
void linear_op(const Call& c) {
  const Buf x = c.in(0), w = c.in(1), y = c.out(0);
  const bool has_bias = c.flag("has_bias");
  const Buf b = has_bias ? c.in(2) : Buf{};
  const DType dt = float_dtype(x, "x");
  same_dtype(x, w, "weight"), same_dtype(x, y, "out");
  if (has_bias) same_dtype(x, b, "bias");
  int64_t m = x.dim(-2);
  const int64_t in = x.dim(-1), of = w.dim(-2);
  if (w.dim(-1) != in || y.dim(-2) != m || y.dim(-1) != of || (has_bias && b.dim(-1) != of))
    throw Invalid("linear: shapes do not match");
  const int64_t bn = has_bias ? batch_of({{&x, 2}, {&w, 2}, {&b, 1}, {&y, 2}}) : batch_of({{&x, 2}, {&w, 2}, {&y, 2}});
  const bool fold = w.lead(2) == 1 && (!has_bias || b.lead(1) == 1) && x.lead(2) == y.lead(2);
  const int64_t calls = fold ? 1 : bn;
  if (fold) m *= bn;
  if (y.count == 0) return;
  for (int64_t i = 0; i < calls; ++i) {
    const void* bp = has_bias ? b.at(1, i) : nullptr;
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      imkern::cuda::linear_forward_cuda(dt, m, in, of, x.at(2, i), w.at(2, i), bp, y.at(2, i), c.flag("allow_tf32"),
                                        c.stream);
#endif
    } else {
      IMKERN_CALL(linear_forward, dt, x.at(2, i), w.at(2, i), bp, y.at(2, i), m, in, of);
    }
  }
}

void linear_backward_op(const Call& c) {
  const Buf go = c.in(0), x = c.in(1), w = c.in(2), gi = c.out(0), gw = c.out(1), gb = c.out(2);
  const DType dt = float_dtype(x, "x");
  for (const Buf* t : {&go, &w, &gi, &gw, &gb}) same_dtype(x, *t, "linear_backward operand");
  const int64_t m = x.dim(-2), in = x.dim(-1), of = w.dim(-2);
  expect_dims(w, 2, {of, in}, "weight");
  expect_dims(go, 2, {m, of}, "grad_output");
  expect_dims(gi, 2, {m, in}, "grad_input");
  expect_dims(gw, 2, {of, in}, "grad_weight");
  expect_dims(gb, 1, {of}, "grad_bias");
  const int64_t bn = batch_of({{&go, 2}, {&x, 2}, {&w, 2}, {&gi, 2}, {&gw, 2}, {&gb, 1}});
  if (gi.lead(2) != bn || gw.lead(2) != bn || gb.lead(1) != bn) throw Invalid("gradients must carry the batch");
  for (int64_t i = 0; i < bn; ++i) {
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      imkern::cuda::linear_backward_cuda(dt, m, in, of, go.at(2, i), x.at(2, i), w.at(2, i), gi.at(2, i), gw.at(2, i),
                                         gb.at(1, i), c.flag("allow_tf32"), c.stream);
#endif
    } else {
      IMKERN_CALL(linear_backward, dt, go.at(2, i), x.at(2, i), w.at(2, i), gi.at(2, i), gw.at(2, i), gb.at(1, i), m,
                  in, of);
    }
  }
}

// Pooling: input (..., H, W) and output (..., OH, OW) planes; every leading dimension (N, C and
// a vmap batch) is a plane.
imkern::Pool2dShape pool_shape(const Call& c, const Buf& in, const Buf& out, bool windows) {
  imkern::Pool2dShape p;
  if (in.rank() < 4 || out.rank() < 4) throw Invalid("pooling: expected (N, C, H, W) arrays");
  p.planes = in.lead(2), p.h = in.dim(-2), p.w = in.dim(-1), p.oh = out.dim(-2), p.ow = out.dim(-1);
  if (out.lead(2) != p.planes) throw Invalid("pooling: input and output planes differ");
  if (windows) {
    const auto k = c.i64s("kernel_size", 2), s = c.i64s("stride", 2), pd = c.i64s("padding", 2),
               d = c.i64s("dilation", 2);
    p.kh = k[0], p.kw = k[1], p.sh = s[0], p.sw = s[1], p.ph = pd[0], p.pw = pd[1], p.dh = d[0], p.dw = d[1];
    if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0 ||
        2 * p.ph > p.kh || 2 * p.pw > p.kw)
      throw Invalid("pooling: bad window");
    if ((p.oh - 1) * p.sh - p.ph >= p.h + p.ph || (p.ow - 1) * p.sw - p.pw >= p.w + p.pw)
      throw Invalid("pooling: too many output rows or columns");
  }
  return p;
}

// The indices (a residual of the backward pass) travel as int32 pairs holding the int64
// positions the kernels write: (..., OH, OW, 2), so JAX needs no 64-bit integers.
int64_t* index_pairs(const Buf& idx, const Buf& y) {
  if (idx.et != ffi::DataType::S32 || idx.rank() != y.rank() + 1 || idx.dim(-1) != 2 || idx.count != 2 * y.count)
    throw Invalid("max_pool2d: indices must be int32 (..., OH, OW, 2)");
  return static_cast<int64_t*>(idx.p);
}

void max_pool2d_op(const Call& c) {
  const Buf x = c.in(0), y = c.out(0), idx = c.out(1);
  const DType dt = float_dtype(x, "x");
  same_dtype(x, y, "out");
  const imkern::Pool2dShape p = pool_shape(c, x, y, true);
  int64_t* ip = index_pairs(idx, y);
  if (y.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) return imkern::cuda::max_pool2d_cuda(dt, p, x.p, y.p, ip, c.stream);
#endif
  IMKERN_CALL(max_pool2d, dt, x.p, y.p, ip, p);
}

// Operands grad_output, indices; result grad_input.
void max_pool2d_backward_op(const Call& c) {
  const Buf gy = c.in(0), idx = c.in(1), gx = c.out(0);
  const DType dt = float_dtype(gx, "grad_input");
  same_dtype(gx, gy, "grad_output");
  const imkern::Pool2dShape p = pool_shape(c, gx, gy, false);
  const int64_t* ip = index_pairs(idx, gy);
  if (gx.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) {
    if (gy.count == 0) return cuda_check(cudaMemsetAsync(gx.p, 0, gx.count * gx.item, static_cast<cudaStream_t>(c.stream)), "cudaMemsetAsync");
    return imkern::cuda::max_pool2d_backward_cuda(dt, p, false, gy.p, ip, gx.p, c.stream);
  }
#endif
  if (gy.count == 0) return static_cast<void>(std::memset(gx.p, 0, gx.count * gx.item));
  // The kernel indexes grad_input with the positions: each must lie in its plane.
  for (int64_t i = 0; i < gy.count; ++i)
    if (ip[i] < 0 || ip[i] >= p.h * p.w) throw Invalid("max_pool2d: index outside its plane");
  IMKERN_CALL(max_pool2d_backward, dt, gy.p, ip, gx.p, p);
}

// Forward: operand x, result y. Backward: operand grad_output, result grad_input. The same
// window attributes, checks and dispatch; the (H, W) side is x / grad_input.
template <bool Backward>
void avg_pool2d_any(const Call& c) {
  const Buf in = c.in(0), res = c.out(0);
  const Buf& full = Backward ? res : in;
  const Buf& pooled = Backward ? in : res;
  const DType dt = float_dtype(full, Backward ? "grad_input" : "x");
  same_dtype(full, pooled, Backward ? "grad_output" : "out");
  const imkern::Pool2dShape p = pool_shape(c, full, pooled, true);
  const bool cip = c.flag("count_include_pad");
  const int64_t dov = c.i64("divisor_override");
  if (res.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) {
    if (dov > 0) throw Invalid("avg_pool2d: divisor_override is not supported by the CUDA kernels");
    if constexpr (Backward) return imkern::cuda::avg_pool2d_backward_cuda(dt, p, cip, in.p, res.p, c.stream);
    else return imkern::cuda::avg_pool2d_cuda(dt, p, cip, in.p, res.p, c.stream);
  }
#endif
  if constexpr (Backward) IMKERN_CALL(avg_pool2d_backward, dt, in.p, res.p, p, cip, dov);
  else IMKERN_CALL(avg_pool2d, dt, in.p, res.p, p, cip, dov);
}
void avg_pool2d_op(const Call& c) { avg_pool2d_any<false>(c); }
void avg_pool2d_backward_op(const Call& c) { avg_pool2d_any<true>(c); }

imkern::Activation activation_of(const Call& c) {
  const int64_t a = c.i64("activation");
  if (a < 0 || a > static_cast<int64_t>(imkern::Activation::gelu)) throw Invalid("unknown activation");
  return static_cast<imkern::Activation>(a);
}

// Elementwise over every element (any shape, any batch).
void activation_op(const Call& c) {
  const Buf x = c.in(0), y = c.out(0);
  const DType dt = float_dtype(x, "x");
  same_dtype(x, y, "out");
  if (x.count != y.count) throw Invalid("activation: sizes differ");
  const imkern::Activation a = activation_of(c);
  const double slope = c.f64("slope");
  if (x.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) return imkern::cuda::activation_cuda(dt, a, x.count, x.p, y.p, static_cast<float>(slope), c.stream);
#endif
  IMKERN_CALL(activation, dt, a, x.p, y.p, x.count, slope);
}

// Operands grad_output, x, y (the forward output); result grad_input.
void activation_backward_op(const Call& c) {
  const Buf gy = c.in(0), x = c.in(1), y = c.in(2), gx = c.out(0);
  const DType dt = float_dtype(gy, "grad_output");
  for (const Buf* t : {&x, &y, &gx}) {
    same_dtype(gy, *t, "activation_backward operand");
    if (t->count != gy.count) throw Invalid("activation_backward: sizes differ");
  }
  const imkern::Activation a = activation_of(c);
  const double slope = c.f64("slope");
  if (gy.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda())
    return imkern::cuda::activation_backward_cuda(dt, a, gy.count, gy.p, x.p, y.p, gx.p, static_cast<float>(slope),
                                                  c.stream);
#endif
  IMKERN_CALL(activation_backward, dt, a, gy.p, x.p, y.p, gx.p, gy.count, slope);
}

// Softmax over the axis with `inner_rank` dimensions after it; every dimension before it (a
// vmap batch included) is `outer`.
void softmax_op(const Call& c) {
  const Buf x = c.in(0), y = c.out(0);
  const DType dt = float_dtype(x, "x");
  same_dtype(x, y, "out");
  if (x.dims != y.dims) throw Invalid("softmax: shapes differ");
  const int64_t ir = c.i64("inner_rank");
  if (ir < 0 || ir >= x.rank()) throw Invalid("softmax: inner_rank out of range");
  const int64_t len = x.dim(static_cast<int>(-ir - 1)), inner = x.core_count(static_cast<int>(ir));
  const int64_t outer = x.lead(static_cast<int>(ir + 1));
  const bool log = c.flag("log");
  if (x.count == 0) return;
  IMKERN_NO_CUDA(c);
#if defined(IMKERN_WITH_CUDA)
  if (c.cuda()) return imkern::cuda::softmax_cuda(dt, outer, len, inner, x.p, y.p, log, c.stream);
#endif
  IMKERN_CALL(softmax, dt, x.p, y.p, outer, len, inner, log);
}

// Batch norm over x (N, C, H, W). Per-channel vectors (weight, bias, running mean, running var)
// are operands of one float dtype (has_weight / has_bias / has_stats say which are given; absent
// ones are empty). The CPU kernels take float64 vectors (converted here, as imkern.nn does for
// float32 ones), the CUDA kernels float32 ones.
struct Channels {
  std::vector<double> v;
  const double* get(bool given) const { return given ? v.data() : nullptr; }
  double* get(bool given) { return given ? v.data() : nullptr; }
};

// Absent vectors arrive as zeros of the same shape (the flags say which are given).
Channels host_channels(const Buf& b, int64_t i, int64_t c) {
  Channels r;
  if (b.rank() < 1 || b.dim(-1) != c) throw Invalid("batch_norm: per-channel vector of the wrong length");
  r.v.resize(static_cast<size_t>(c));
  if (b.et == ffi::DataType::F64) {
    std::memcpy(r.v.data(), b.at(1, i), c * 8);
  } else if (b.et == ffi::DataType::F32) {
    const float* f = static_cast<const float*>(b.at(1, i));
    for (int64_t j = 0; j < c; ++j) r.v[static_cast<size_t>(j)] = f[j];
  } else {
    throw Invalid("batch_norm: per-channel vectors must be float32 or float64");
  }
  return r;
}

void store_channels(const Channels& h, const Buf& b, int64_t i) {
  if (b.et == ffi::DataType::F64) {
    std::memcpy(b.at(1, i), h.v.data(), h.v.size() * 8);
  } else {
    float* f = static_cast<float*>(b.at(1, i));
    for (size_t j = 0; j < h.v.size(); ++j) f[j] = static_cast<float>(h.v[j]);
  }
}

#if defined(IMKERN_WITH_CUDA)
const float* device_channels(const Buf& b, int64_t i, bool given) {
  if (!given) return nullptr;
  if (b.et != ffi::DataType::F32) throw Invalid("batch_norm: the CUDA kernels take float32 per-channel vectors");
  return static_cast<const float*>(b.at(1, i));
}
#endif

// Operands x, weight, bias, running_mean, running_var; results y, new running_mean, new
// running_var (copies of the given ones, updated in training mode).
void batch_norm_op(const Call& c) {
  const Buf x = c.in(0), w = c.in(1), b = c.in(2), rm = c.in(3), rv = c.in(4);
  const Buf y = c.out(0), orm = c.out(1), orv = c.out(2);
  const DType dt = float_dtype(x, "x");
  same_dtype(x, y, "out");
  const bool hw_ = c.flag("has_weight"), hb = c.flag("has_bias"), hs = c.flag("has_stats"), training = c.flag("training");
  const double momentum = c.f64("momentum"), eps = c.f64("eps");
  if (!hs && !training) throw Invalid("batch_norm: running statistics are required in eval mode");
  if (x.rank() < 4) throw Invalid("batch_norm: expected x (N, C, H, W)");
  const int64_t n = x.dim(-4), ch = x.dim(-3), hw = x.dim(-2) * x.dim(-1);
  if (y.dims != x.dims || rm.et != orm.et || rv.et != orv.et || orm.dim(-1) != ch || orv.dim(-1) != ch)
    throw Invalid("batch_norm: result shapes");
  const int64_t bn = batch_of({{&x, 4}, {&y, 4}});
  for (const Buf* t : {&w, &b, &rm, &rv, &orm, &orv})
    if (t->count && t->lead(1) != 1 && t->lead(1) != bn) throw Invalid("batch_norm: per-channel vectors batched differently");
  for (int64_t i = 0; i < bn; ++i) {
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      // The kernel updates the running statistics in place: in the results' copies.
      copy_async(orm.at(1, i), rm.at(1, i), ch * rm.item, cudaMemcpyDeviceToDevice, c.stream);
      copy_async(orv.at(1, i), rv.at(1, i), ch * rv.item, cudaMemcpyDeviceToDevice, c.stream);
      float* m = hs ? const_cast<float*>(device_channels(orm, i, true)) : nullptr;
      float* v = hs ? const_cast<float*>(device_channels(orv, i, true)) : nullptr;
      if (x.count)
        imkern::cuda::batch_norm2d_cuda(dt, n, ch, hw, x.at(4, i), device_channels(w, i, hw_), device_channels(b, i, hb),
                                        m, v, training, momentum, eps, y.at(4, i), c.stream);
#endif
    } else {
      const Channels wv = host_channels(w, i, ch), bv = host_channels(b, i, ch);
      Channels mv = host_channels(rm, i, ch), vv = host_channels(rv, i, ch);
      if (x.count)
        IMKERN_CALL(batch_norm2d, dt, n, ch, hw, x.at(4, i), wv.get(hw_), bv.get(hb), mv.get(hs), vv.get(hs), training,
                    momentum, eps, y.at(4, i));
      store_channels(mv, orm, i), store_channels(vv, orv, i);
    }
  }
}

// Operands grad_output, x, weight, running_mean, running_var; results grad_input, grad_weight,
// grad_bias (the weight's dtype).
void batch_norm_backward_op(const Call& c) {
  const Buf gy = c.in(0), x = c.in(1), w = c.in(2), rm = c.in(3), rv = c.in(4);
  const Buf gx = c.out(0), gw = c.out(1), gb = c.out(2);
  const DType dt = float_dtype(x, "x");
  same_dtype(x, gy, "grad_output"), same_dtype(x, gx, "grad_input");
  const bool hw_ = c.flag("has_weight"), hs = c.flag("has_stats"), training = c.flag("training");
  const double eps = c.f64("eps");
  if (!hs && !training) throw Invalid("batch_norm: running statistics are required in eval mode");
  if (x.rank() < 4 || gy.dims != x.dims || gx.dims != x.dims) throw Invalid("batch_norm_backward: shapes");
  const int64_t n = x.dim(-4), ch = x.dim(-3), hw = x.dim(-2) * x.dim(-1);
  const int64_t bn = batch_of({{&gy, 4}, {&x, 4}, {&gx, 4}, {&gw, 1}, {&gb, 1}});
  if (gw.dim(-1) != ch || gb.dim(-1) != ch || gw.et != gb.et) throw Invalid("batch_norm_backward: gradient shapes");
  for (int64_t i = 0; i < bn; ++i) {
    if (c.cuda()) {
#if defined(IMKERN_WITH_CUDA)
      if (gw.et != ffi::DataType::F32) throw Invalid("batch_norm: the CUDA kernels take float32 per-channel vectors");
      imkern::cuda::batch_norm2d_backward_cuda(dt, n, ch, hw, gy.at(4, i), x.at(4, i), device_channels(w, i, hw_),
                                               device_channels(rm, i, hs), device_channels(rv, i, hs), training, eps,
                                               gx.at(4, i), static_cast<float*>(gw.at(1, i)),
                                               static_cast<float*>(gb.at(1, i)), c.stream);
#endif
    } else {
      const Channels wv = host_channels(w, i, ch), mv = host_channels(rm, i, ch), vv = host_channels(rv, i, ch);
      Channels gwv, gbv;
      gwv.v.assign(static_cast<size_t>(ch), 0.0), gbv.v.assign(static_cast<size_t>(ch), 0.0);
      if (x.count)
        IMKERN_CALL(batch_norm2d_backward, dt, n, ch, hw, gy.at(4, i), x.at(4, i), wv.get(hw_), mv.get(hs), vv.get(hs),
                    training, eps, gx.at(4, i), gwv.v.data(), gbv.v.data());
      store_channels(gwv, gw, i), store_channels(gbv, gb, i);
    }
  }
}

// ---- the one handler body: decode, run, map exceptions to XLA errors -----------------------------

using OpFn = void (*)(const Call&);

ffi::Error run(const char* name, OpFn f, const Call& c) {
  try {
    f(c);
  } catch (const std::invalid_argument& e) {
    return ffi::Error::InvalidArgument(std::string("imkern ") + name + ": " + e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("imkern ") + name + (c.cuda() ? " (CUDA): " : ": ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

// Every op under one binding per platform: the CPU handlers have no stream; the CUDA ones get
// XLA's stream and its scratch allocator (resize's device tables).
#define IMKERN_OPS(X)                            \
  X(sep_filter, sep_filter_op)                   \
  X(correlate, correlate_op)                     \
  X(median, median_op)                           \
  X(morphology, morphology_op)                   \
  X(deriv_filter, deriv_op)                      \
  X(color_convert, color_op)                     \
  X(resize, resize_op)                           \
  X(conv2d, conv2d_op)                           \
  X(conv2d_backward, conv2d_backward_op)         \
  X(linear, linear_op)                           \
  X(linear_backward, linear_backward_op)         \
  X(max_pool2d, max_pool2d_op)                   \
  X(max_pool2d_backward, max_pool2d_backward_op) \
  X(avg_pool2d, avg_pool2d_op)                   \
  X(avg_pool2d_backward, avg_pool2d_backward_op) \
  X(activation, activation_op)                   \
  X(activation_backward, activation_backward_op) \
  X(softmax, softmax_op)                         \
  X(batch_norm, batch_norm_op)                   \
  X(batch_norm_backward, batch_norm_backward_op)

#define IMKERN_DEFINE_CPU(name, fn)                                                   \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                      \
      imkern_ffi_##name,                                                              \
      [](ffi::RemainingArgs a, ffi::RemainingRets r, ffi::Dictionary d) {             \
        return run(#name, fn, Call{#name, a, r, d});                                  \
      },                                                                              \
      ffi::Ffi::Bind().RemainingArgs().RemainingRets().Attrs());
IMKERN_OPS(IMKERN_DEFINE_CPU)

#if defined(IMKERN_WITH_CUDA)
#define IMKERN_DEFINE_CUDA(name, fn)                                                                         \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                             \
      imkern_ffi_##name##_cuda,                                                                              \
      [](void* stream, ffi::ScratchAllocator scratch, ffi::RemainingArgs a, ffi::RemainingRets r,            \
         ffi::Dictionary d) { return run(#name, fn, Call{#name, a, r, d, stream, &scratch}); },              \
      ffi::Ffi::Bind()                                                                                       \
          .Ctx<ffi::PlatformStream<void*>>()                                                                 \
          .Ctx<ffi::ScratchAllocator>()                                                                      \
          .RemainingArgs()                                                                                   \
          .RemainingRets()                                                                                   \
          .Attrs());
IMKERN_OPS(IMKERN_DEFINE_CUDA)
#endif

IMKERN_BINDINGS(jax_ffi) {
  m.def(
      "jax_ffi_handlers",
      [] {
        py::dict d, cpu, cuda;
#define IMKERN_EXPORT_CPU(name, fn) cpu["imkern_" #name] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_##name));
        IMKERN_OPS(IMKERN_EXPORT_CPU)
#if defined(IMKERN_WITH_CUDA)
#define IMKERN_EXPORT_CUDA(name, fn) \
  cuda["imkern_" #name] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_##name##_cuda));
        IMKERN_OPS(IMKERN_EXPORT_CUDA)
#endif
        d["cpu"] = cpu;
        d["CUDA"] = cuda;
        return d;
      },
      "imkern.jax's XLA FFI handlers as PyCapsules: {platform: {target name: capsule}} (CUDA: CUDA builds).");
}
