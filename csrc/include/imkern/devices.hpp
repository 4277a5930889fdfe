// GPU queries of the runtime (csrc/runtime/runtime.cu): which devices the CUDA runtime sees.
#pragma once
#include <string>
#include <vector>

namespace imkern {
namespace cuda {
struct DeviceInfo {
  int id;
  std::string name;
  int major, minor;
  long long memory_bytes;
};
// The GPUs the runtime sees; empty (never an error) without a driver or device.
std::vector<DeviceInfo> devices();

}  // namespace cuda
}  // namespace imkern
