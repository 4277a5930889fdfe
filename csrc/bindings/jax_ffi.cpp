// XLA FFI handlers of the linear filters, for imkern.jax (jax.ffi.ffi_call): CPU, and CUDA in
// CUDA builds (registered for platform "CUDA"; the caller's XLA stream).
//
// Each handler decodes XLA's buffers (row-major, the default layout of custom-call operands)
// into imkern's ImageDesc and calls the same kernel as the NumPy / CuPy path (CPU: dispatched to
// the best ISA, imkern's own thread pool). Both platforms get the same operands and attributes:
// the image, then the kernel taps as operands of the accumulation dtype (float32, float64 for
// float64 images: what the CUDA kernels read on the device), then the taps again as float64
// attributes (what the CPU kernels take); each handler ignores the copy it does not need.
// The image's last `image_rank` dimensions are the image: 2 -> (H, W), 3 -> (H, W, C); every
// leading dimension (a batch, or what jax.vmap adds) is folded into N, so batching needs no loop. Python (imkern.jax) validates the arguments; the
// handlers re-check only what would be memory-unsafe and return InvalidArgument errors.
//
// Exported to Python as PyCapsules (`_core.jax_ffi_handlers()`: {platform: {name: capsule}}),
// which jax.ffi.register_ffi_target registers. Built against the vendored
// header-only FFI API in csrc/third_party/xla (no JAX needed at build time).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "imkern/filters.hpp"
#include "registry.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
namespace py = pybind11;
using imkern::Border;
using imkern::DType;
using imkern::ImageDesc;

namespace {

bool dtype_of(ffi::DataType t, DType* out) {
  switch (t) {
    case ffi::DataType::U8: *out = DType::u8; return true;
    case ffi::DataType::U16: *out = DType::u16; return true;
    case ffi::DataType::F32: *out = DType::f32; return true;
    case ffi::DataType::F64: *out = DType::f64; return true;
    default: return false;
  }
}

// The ImageDesc of a row-major buffer whose last `image_rank` (2 or 3) dimensions are the image.
ffi::Error image_of(const ffi::AnyBuffer& b, int64_t image_rank, ImageDesc* d) {
  auto dims = b.dimensions();
  const int64_t rank = static_cast<int64_t>(dims.size());
  if ((image_rank != 2 && image_rank != 3) || rank < image_rank)
    return ffi::Error::InvalidArgument("imkern: image_rank must be 2 or 3 and at most the buffer's rank");
  int64_t n = 1;
  for (int64_t i = 0; i < rank - image_rank; ++i) n *= dims[i];
  d->n = n;
  d->h = dims[rank - image_rank];
  d->w = dims[rank - image_rank + 1];
  d->c = image_rank == 3 ? dims[rank - 1] : 1;
  d->row_stride = d->w * d->c;
  d->batch_stride = d->h * d->row_stride;
  return ffi::Error::Success();
}

Border border_of(int64_t b) { return static_cast<Border>(b); }

ffi::Error check_common(const ffi::AnyBuffer& src, ffi::Result<ffi::AnyBuffer>& dst, int64_t border,
                        DType* dt, DType* od) {
  if (!dtype_of(src.element_type(), dt) || !dtype_of(dst->element_type(), od))
    return ffi::Error::InvalidArgument("imkern: image dtype must be uint8, uint16, float32 or float64");
  if (*od != *dt && *od != DType::f32 && *od != DType::f64)
    return ffi::Error::InvalidArgument("imkern: output dtype must be the image's, float32 or float64");
  if (src.element_count() != dst->element_count())
    return ffi::Error::InvalidArgument("imkern: output and image differ in size");
  if (border < 0 || border > 4) return ffi::Error::InvalidArgument("imkern: unknown border code");
  return ffi::Error::Success();
}

ffi::Error SepFilterImpl(ffi::AnyBuffer src, ffi::AnyBuffer, ffi::AnyBuffer, ffi::Result<ffi::AnyBuffer> dst,
                         ffi::Span<const double> ky, ffi::Span<const double> kx, int64_t image_rank, int64_t border,
                         double cval) {
  DType dt, od;
  if (auto e = check_common(src, dst, border, &dt, &od); e.failure()) return e;
  if (ky.size() == 0 || kx.size() == 0) return ffi::Error::InvalidArgument("imkern: empty kernel");
  ImageDesc s, d;
  if (auto e = image_of(src, image_rank, &s); e.failure()) return e;
  d = s;
  if (src.element_count() == 0) return ffi::Error::Success();
  const int kh = static_cast<int>(ky.size()), kw = static_cast<int>(kx.size());
  try {
    IMKERN_CALL(sep_filter, dt, src.untyped_data(), s, od, dst->untyped_data(), d, ky.begin(), kh, kh / 2,
                kx.begin(), kw, kw / 2, border_of(border), cval);
  } catch (const std::exception& ex) {
    return ffi::Error::Internal(std::string("imkern sep_filter: ") + ex.what());
  }
  return ffi::Error::Success();
}

ffi::Error CorrelateImpl(ffi::AnyBuffer src, ffi::AnyBuffer, ffi::Result<ffi::AnyBuffer> dst,
                         ffi::Span<const double> k, int64_t kh, int64_t kw, int64_t image_rank, int64_t border,
                         double cval) {
  DType dt, od;
  if (auto e = check_common(src, dst, border, &dt, &od); e.failure()) return e;
  if (kh < 1 || kw < 1 || static_cast<int64_t>(k.size()) != kh * kw)
    return ffi::Error::InvalidArgument("imkern: kernel size does not match (kh, kw)");
  ImageDesc s, d;
  if (auto e = image_of(src, image_rank, &s); e.failure()) return e;
  d = s;
  if (src.element_count() == 0) return ffi::Error::Success();
  try {
    IMKERN_CALL(correlate, dt, src.untyped_data(), s, od, dst->untyped_data(), d, k.begin(), static_cast<int>(kh),
                static_cast<int>(kw), static_cast<int>(kh / 2), static_cast<int>(kw / 2), border_of(border), cval);
  } catch (const std::exception& ex) {
    return ffi::Error::Internal(std::string("imkern correlate: ") + ex.what());
  }
  return ffi::Error::Success();
}

#if defined(IMKERN_WITH_CUDA)
// The device taps must be of the accumulation type and hold at least `n` values.
ffi::Error check_taps(const ffi::AnyBuffer& w, DType dt, DType od, size_t n) {
  const bool f64 = dt == DType::f64 || od == DType::f64;
  if (w.element_type() != (f64 ? ffi::DataType::F64 : ffi::DataType::F32))
    return ffi::Error::InvalidArgument("imkern: device taps must be float64 for float64 data, else float32");
  if (w.element_count() < n) return ffi::Error::InvalidArgument("imkern: too few device taps");
  return ffi::Error::Success();
}

ffi::Error SepFilterCudaImpl(void* stream, ffi::AnyBuffer src, ffi::AnyBuffer wy, ffi::AnyBuffer wx,
                             ffi::Result<ffi::AnyBuffer> dst, ffi::Span<const double> ky, ffi::Span<const double> kx,
                             int64_t image_rank, int64_t border, double cval) {
  DType dt, od;
  if (auto e = check_common(src, dst, border, &dt, &od); e.failure()) return e;
  if (ky.size() == 0 || kx.size() == 0) return ffi::Error::InvalidArgument("imkern: empty kernel");
  if (auto e = check_taps(wy, dt, od, ky.size()); e.failure()) return e;
  if (auto e = check_taps(wx, dt, od, kx.size()); e.failure()) return e;
  ImageDesc s, d;
  if (auto e = image_of(src, image_rank, &s); e.failure()) return e;
  d = s;
  if (src.element_count() == 0) return ffi::Error::Success();
  const int kh = static_cast<int>(ky.size()), kw = static_cast<int>(kx.size());
  try {
    imkern::cuda::sep_filter_cuda(dt, src.untyped_data(), s, od, dst->untyped_data(), d, wy.untyped_data(), kh,
                                  kh / 2, wx.untyped_data(), kw, kw / 2, border_of(border), cval, stream);
  } catch (const std::exception& ex) {
    return ffi::Error::Internal(std::string("imkern sep_filter (CUDA): ") + ex.what());
  }
  return ffi::Error::Success();
}

ffi::Error CorrelateCudaImpl(void* stream, ffi::AnyBuffer src, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> dst,
                             ffi::Span<const double> k, int64_t kh, int64_t kw, int64_t image_rank, int64_t border,
                             double cval) {
  DType dt, od;
  if (auto e = check_common(src, dst, border, &dt, &od); e.failure()) return e;
  if (kh < 1 || kw < 1 || static_cast<int64_t>(k.size()) != kh * kw)
    return ffi::Error::InvalidArgument("imkern: kernel size does not match (kh, kw)");
  if (auto e = check_taps(w, dt, od, k.size()); e.failure()) return e;
  ImageDesc s, d;
  if (auto e = image_of(src, image_rank, &s); e.failure()) return e;
  d = s;
  if (src.element_count() == 0) return ffi::Error::Success();
  try {
    imkern::cuda::correlate_cuda(dt, src.untyped_data(), s, od, dst->untyped_data(), d, w.untyped_data(),
                                 static_cast<int>(kh), static_cast<int>(kw), static_cast<int>(kh / 2),
                                 static_cast<int>(kw / 2), border_of(border), cval, stream);
  } catch (const std::exception& ex) {
    return ffi::Error::Internal(std::string("imkern correlate (CUDA): ") + ex.what());
  }
  return ffi::Error::Success();
}
#endif  // IMKERN_WITH_CUDA

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(imkern_ffi_sep_filter, SepFilterImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<ffi::Span<const double>>("kernel_y")
                                  .Attr<ffi::Span<const double>>("kernel_x")
                                  .Attr<int64_t>("image_rank")
                                  .Attr<int64_t>("border")
                                  .Attr<double>("cval"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(imkern_ffi_correlate, CorrelateImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<ffi::Span<const double>>("kernel")
                                  .Attr<int64_t>("kh")
                                  .Attr<int64_t>("kw")
                                  .Attr<int64_t>("image_rank")
                                  .Attr<int64_t>("border")
                                  .Attr<double>("cval"));

#if defined(IMKERN_WITH_CUDA)
XLA_FFI_DEFINE_HANDLER_SYMBOL(imkern_ffi_sep_filter_cuda, SepFilterCudaImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<void*>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<ffi::Span<const double>>("kernel_y")
                                  .Attr<ffi::Span<const double>>("kernel_x")
                                  .Attr<int64_t>("image_rank")
                                  .Attr<int64_t>("border")
                                  .Attr<double>("cval"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(imkern_ffi_correlate_cuda, CorrelateCudaImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<void*>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<ffi::Span<const double>>("kernel")
                                  .Attr<int64_t>("kh")
                                  .Attr<int64_t>("kw")
                                  .Attr<int64_t>("image_rank")
                                  .Attr<int64_t>("border")
                                  .Attr<double>("cval"));
#endif

IMKERN_BINDINGS(jax_ffi) {
  m.def("jax_ffi_handlers", [] {
    py::dict d, cpu, cuda;
    cpu["imkern_sep_filter"] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_sep_filter));
    cpu["imkern_correlate"] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_correlate));
#if defined(IMKERN_WITH_CUDA)
    cuda["imkern_sep_filter"] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_sep_filter_cuda));
    cuda["imkern_correlate"] = py::capsule(reinterpret_cast<void*>(&imkern_ffi_correlate_cuda));
#endif
    d["cpu"] = cpu;
    d["CUDA"] = cuda;
    return d;
  }, "imkern.jax's XLA FFI handlers as PyCapsules: {platform: {target name: capsule}} (CUDA: CUDA builds).");
}
