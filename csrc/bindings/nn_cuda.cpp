// Bindings of the CUDA CNN kernels (csrc/include/imkern/nn.hpp, namespace cuda). Arrays arrive
// from the nn ops (python/imkern/nn/_<op>.py, beside their CPU calls) as plain integers (device pointers, sizes, dtype code, stream);
// 0 is a null pointer. The Python layer validates; the C++ launchers re-check sizes.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "registry.hpp"
#if defined(IMKERN_WITH_CUDA)
#include "imkern/nn.hpp"
#endif

namespace py = pybind11;

#if defined(IMKERN_WITH_CUDA)
namespace {

using imkern::DType;

DType dtype_code(int code) {
  if (code != static_cast<int>(DType::f32) && code != static_cast<int>(DType::f16) &&
      code != static_cast<int>(DType::bf16))
    throw py::type_error("imkern CUDA nn: dtype code must be float32, float16 or bfloat16");
  return static_cast<DType>(code);
}

template <typename T = void>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

int64_t item(const py::tuple& t, size_t i) { return t[i].cast<int64_t>(); }

// (n, c, h, w, k, r, s, oh, ow, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, groups)
imkern::Conv2dShape conv_shape(const py::tuple& t) {
  if (t.size() != 16) throw std::invalid_argument("conv2d shape tuple must have 16 integers");
  imkern::Conv2dShape s;
  s.n = item(t, 0);
  s.c = item(t, 1);
  s.h = item(t, 2);
  s.w = item(t, 3);
  s.k = item(t, 4);
  s.r = item(t, 5);
  s.s = item(t, 6);
  s.oh = item(t, 7);
  s.ow = item(t, 8);
  s.sh = item(t, 9);
  s.sw = item(t, 10);
  s.pt = item(t, 11);
  s.pl = item(t, 12);
  s.dh = item(t, 13);
  s.dw = item(t, 14);
  s.groups = item(t, 15);
  return s;
}

// (planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw)
imkern::Pool2dShape pool_shape(const py::tuple& t) {
  if (t.size() != 13) throw std::invalid_argument("pool2d shape tuple must have 13 integers");
  imkern::Pool2dShape p;
  p.planes = item(t, 0);
  p.h = item(t, 1);
  p.w = item(t, 2);
  p.oh = item(t, 3);
  p.ow = item(t, 4);
  p.kh = item(t, 5);
  p.kw = item(t, 6);
  p.sh = item(t, 7);
  p.sw = item(t, 8);
  p.ph = item(t, 9);
  p.pw = item(t, 10);
  p.dh = item(t, 11);
  p.dw = item(t, 12);
  return p;
}


}  // namespace
#endif

IMKERN_BINDINGS(nn_cuda) {
#if defined(IMKERN_WITH_CUDA)
  namespace ic = imkern::cuda;
  m.def("cuda_gemm", [](int dtype, int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t lda, bool trans_a,
                        uintptr_t b, int64_t ldb, bool trans_b, uintptr_t c, int64_t ldc, uintptr_t bias,
                        int bias_mode, bool relu, bool allow_tf32, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::gemm_cuda(dt, M, N, K, ptr(a), lda, trans_a, ptr(b), ldb, trans_b, ptr(c), ldc, ptr(bias), bias_mode, relu,
                  allow_tf32, ptr(stream));
  });
  m.def("cuda_linear", [](int dtype, int64_t m, int64_t in, int64_t out, uintptr_t x, uintptr_t w, uintptr_t bias,
                          uintptr_t y, bool allow_tf32, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::linear_forward_cuda(dt, m, in, out, ptr(x), ptr(w), ptr(bias), ptr(y), allow_tf32, ptr(stream));
  });
  m.def("cuda_linear_backward", [](int dtype, int64_t m, int64_t in, int64_t out, uintptr_t gy, uintptr_t x,
                                   uintptr_t w, uintptr_t gx, uintptr_t gw, uintptr_t gb, bool allow_tf32,
                                   uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::linear_backward_cuda(dt, m, in, out, ptr(gy), ptr(x), ptr(w), ptr(gx), ptr(gw), ptr(gb), allow_tf32,
                             ptr(stream));
  });
  m.def("cuda_conv2d", [](int dtype, const py::tuple& shape, uintptr_t x, uintptr_t w, uintptr_t bias, bool relu,
                          uintptr_t y, bool allow_tf32, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto s = conv_shape(shape);
    py::gil_scoped_release nogil;
    ic::conv2d_forward_cuda(dt, s, ptr(x), ptr(w), ptr(bias), relu, ptr(y), allow_tf32, ptr(stream));
  });
  m.def("cuda_conv2d_backward_data", [](int dtype, const py::tuple& shape, uintptr_t gy, uintptr_t w, uintptr_t gx,
                                        bool allow_tf32, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto s = conv_shape(shape);
    py::gil_scoped_release nogil;
    ic::conv2d_backward_data_cuda(dt, s, ptr(gy), ptr(w), ptr(gx), allow_tf32, ptr(stream));
  });
  m.def("cuda_conv2d_backward_weight", [](int dtype, const py::tuple& shape, uintptr_t gy, uintptr_t x,
                                          uintptr_t gw, bool allow_tf32, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto s = conv_shape(shape);
    py::gil_scoped_release nogil;
    ic::conv2d_backward_weight_cuda(dt, s, ptr(gy), ptr(x), ptr(gw), allow_tf32, ptr(stream));
  });
  m.def("cuda_channel_sum", [](int dtype, int64_t n, int64_t c, int64_t hw, uintptr_t x, uintptr_t out,
                               uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::channel_sum_cuda(dt, n, c, hw, ptr(x), ptr(out), ptr(stream));
  });
  m.def("cuda_max_pool2d", [](int dtype, const py::tuple& shape, uintptr_t x, uintptr_t y, uintptr_t indices,
                              uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::max_pool2d_cuda(dt, p, ptr(x), ptr(y), ptr<int64_t>(indices), ptr(stream));
  });
  m.def("cuda_max_pool2d_backward", [](int dtype, const py::tuple& shape, bool with_window, uintptr_t gy,
                                       uintptr_t indices, uintptr_t gx, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::max_pool2d_backward_cuda(dt, p, with_window, ptr(gy), ptr<const int64_t>(indices), ptr(gx), ptr(stream));
  });
  m.def("cuda_avg_pool2d", [](int dtype, const py::tuple& shape, bool count_include_pad, uintptr_t x, uintptr_t y,
                              uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::avg_pool2d_cuda(dt, p, count_include_pad, ptr(x), ptr(y), ptr(stream));
  });
  m.def("cuda_avg_pool2d_backward", [](int dtype, const py::tuple& shape, bool count_include_pad, uintptr_t gy,
                                       uintptr_t gx, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::avg_pool2d_backward_cuda(dt, p, count_include_pad, ptr(gy), ptr(gx), ptr(stream));
  });
  m.def("cuda_adaptive_avg_pool2d", [](int dtype, const py::tuple& shape, uintptr_t x, uintptr_t y,
                                       uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::adaptive_avg_pool2d_cuda(dt, p, ptr(x), ptr(y), ptr(stream));
  });
  m.def("cuda_adaptive_avg_pool2d_backward", [](int dtype, const py::tuple& shape, uintptr_t gy, uintptr_t gx,
                                                uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    const auto p = pool_shape(shape);
    py::gil_scoped_release nogil;
    ic::adaptive_avg_pool2d_backward_cuda(dt, p, ptr(gy), ptr(gx), ptr(stream));
  });
  m.def("cuda_activation", [](int dtype, imkern::Activation a, int64_t n, uintptr_t x, uintptr_t y, float slope,
                              uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::activation_cuda(dt, a, n, ptr(x), ptr(y), slope, ptr(stream));
  });
  m.def("cuda_activation_backward", [](int dtype, imkern::Activation a, int64_t n, uintptr_t gy, uintptr_t x, uintptr_t y,
                                       uintptr_t gx, float slope, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::activation_backward_cuda(dt, a, n, ptr(gy), ptr(x), ptr(y), ptr(gx), slope, ptr(stream));
  });
  m.def("cuda_softmax", [](int dtype, int64_t outer, int64_t len, int64_t inner, uintptr_t x, uintptr_t y, bool log,
                           uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::softmax_cuda(dt, outer, len, inner, ptr(x), ptr(y), log, ptr(stream));
  });
  m.def("cuda_cross_entropy", [](int dtype, int64_t n, int64_t c, int64_t inner, uintptr_t logits, uintptr_t target,
                                 imkern::Reduction reduction, double smoothing, int64_t ignore_index, uintptr_t loss,
                                 uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::cross_entropy_cuda(dt, n, c, inner, ptr(logits), ptr<const int64_t>(target), static_cast<int>(reduction), smoothing,
                           ignore_index, ptr(loss), ptr(stream));
  });
  m.def("cuda_cross_entropy_backward", [](int dtype, int64_t n, int64_t c, int64_t inner, uintptr_t logits,
                                          uintptr_t target, imkern::Reduction reduction, double smoothing,
                                          int64_t ignore_index, uintptr_t grad_loss, uintptr_t grad_logits, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::cross_entropy_backward_cuda(dt, n, c, inner, ptr(logits), ptr<const int64_t>(target), static_cast<int>(reduction), smoothing,
                                    ignore_index, ptr<const float>(grad_loss), ptr(grad_logits), ptr(stream));
  });
  m.def("cuda_batch_norm2d", [](int dtype, int64_t n, int64_t c, int64_t hw, uintptr_t x, uintptr_t w, uintptr_t b,
                                uintptr_t rm, uintptr_t rv, bool training, double momentum, double eps, uintptr_t y,
                                uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::batch_norm2d_cuda(dt, n, c, hw, ptr(x), ptr<const float>(w), ptr<const float>(b), ptr<float>(rm),
                          ptr<float>(rv), training, momentum, eps, ptr(y), ptr(stream));
  });
  m.def("cuda_batch_norm2d_backward", [](int dtype, int64_t n, int64_t c, int64_t hw, uintptr_t gy, uintptr_t x,
                                         uintptr_t w, uintptr_t rm, uintptr_t rv, bool training, double eps,
                                         uintptr_t gx, uintptr_t gw, uintptr_t gb, uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::batch_norm2d_backward_cuda(dt, n, c, hw, ptr(gy), ptr(x), ptr<const float>(w), ptr<const float>(rm),
                                   ptr<const float>(rv), training, eps, ptr(gx), ptr<float>(gw), ptr<float>(gb),
                                   ptr(stream));
  });
  m.def("cuda_dropout", [](int dtype, int64_t n, uintptr_t x, uintptr_t y, double p, uint64_t seed,
                           uintptr_t stream) {
    const DType dt = dtype_code(dtype);
    py::gil_scoped_release nogil;
    ic::dropout_cuda(dt, n, ptr(x), ptr(y), p, seed, ptr(stream));
  });
#else
  (void)m;
#endif
}
