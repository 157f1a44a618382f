// Throughput of the hand-written LSTM-AE forward pass (windows/s), by threads and batch size.
// Reports windows/s and GFLOP/s (FLOPs per window from LstmAeWeights::FlopsPerWindow). Batches below
// 2 blocks of 24 windows per thread run on one thread (see LstmAeForward::Run).
#include <benchmark/benchmark.h>

#include <random>

#include "model/forward.h"
#include "model/train.h"

namespace {

void BM_LstmAeForward(benchmark::State& st) {
  const int W = 32, H = 32;
  const size_t batch = static_cast<size_t>(st.range(0));
  const int threads = static_cast<int>(st.range(1));
  iotpipe::ml::LstmAeWeights w = iotpipe::ml::TorchInitWeights(W, H, 1);
  iotpipe::ml::LstmAeForward fwd(w);
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(batch * W), ew(batch), el(batch);
  for (auto& v : x) v = nd(g);
  for (auto _ : st) {
    fwd.Errors(x.data(), batch, ew.data(), el.data(), threads);
    benchmark::DoNotOptimize(ew.data());
  }
  const double n = static_cast<double>(st.iterations()) * static_cast<double>(batch);
  st.counters["windows/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(n * w.FlopsPerWindow() / 1e9, benchmark::Counter::kIsRate);
  st.counters["flops/window"] = w.FlopsPerWindow();
}
BENCHMARK(BM_LstmAeForward)->ArgsProduct({{8, 32, 128, 512, 2048}, {1, 2}})->UseRealTime()->MinTime(0.5);

}  // namespace
