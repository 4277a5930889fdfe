// Device discovery. Must never fail import: without a driver it reports no devices.
#include "common/common.cuh"
#include "imkern/devices.hpp"

namespace imkern {
namespace cuda {

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return out;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    out.push_back({i, p.name, p.major, p.minor, static_cast<long long>(p.totalGlobalMem)});
  }
  return out;
}

}  // namespace cuda
}  // namespace imkern
