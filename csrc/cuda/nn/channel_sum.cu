// Per-channel sums of NCHW tensors (the bias gradients of conv2d and linear: linear with N =
// rows, HW = 1), deterministic: the two-stage reduction of channel_reduce.cuh. Bytes: one read
// of x; FLOPs: one add per element.
#include "imkern/nn.hpp"
#include "common/common.cuh"
#include "nn/channel_reduce.cuh"

namespace imkern {
namespace cuda {

using namespace nn::channel;

void channel_sum_cuda(DType dt, int64_t n, int64_t c, int64_t hw, const void* x, void* out, void* stream) {
  if (n < 0 || c < 0 || hw < 0) throw std::invalid_argument("channel_sum: negative size");
  if (c == 0) return;
  const Red r = make_red(n, c, hw);
  cudaStream_t st = as_stream(stream);
  DeviceBuffer ws(static_cast<size_t>(c * r.parts) * 2 * sizeof(float), st);
  dispatch_float(dt, "channel_sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    channel_reduce(r, ValueOp<T>{static_cast<const T*>(x)}, StoreSum<T>{static_cast<T*>(out)}, ws.get<float>(), st);
  });
}

}  // namespace cuda
}  // namespace imkern
