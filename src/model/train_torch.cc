// The LibTorch side of training, built into libiotpipe_torch.so (see model/torch_api.h): the model as a
// torch::nn::Module, the training loop, and LibTorch's reference forward pass and initialisation.
// Nothing else includes <torch/...>, and the iotpipe binary reaches this file only through dlopen.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "model/torch_api.h"

namespace iotpipe::ml {

namespace {

struct AeNet : torch::nn::Module {
  torch::nn::LSTM enc{nullptr}, dec{nullptr};
  torch::nn::Linear out{nullptr};
  int window, hidden;
  AeNet(int w, int h) : window(w), hidden(h) {
    enc = register_module("enc", torch::nn::LSTM(torch::nn::LSTMOptions(1, h).batch_first(true)));
    dec = register_module("dec", torch::nn::LSTM(torch::nn::LSTMOptions(h, h).batch_first(true)));
    out = register_module("out", torch::nn::Linear(h, 1));
  }
  // x: [B, T] -> reconstruction [B, T]
  torch::Tensor forward(const torch::Tensor& x) {
    auto e = enc->forward(x.unsqueeze(-1));
    torch::Tensor z = std::get<0>(std::get<1>(e))[-1];  // [B, H]
    torch::Tensor din = z.unsqueeze(1).expand({z.size(0), window, hidden}).contiguous();
    auto d = dec->forward(din);
    return out->forward(std::get<0>(d)).squeeze(-1);
  }
};

std::vector<float> ToVec(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous().view({-1});
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

LstmAeWeights Export(AeNet& net) {
  LstmAeWeights w;
  w.window = net.window;
  w.hidden = net.hidden;
  auto ep = net.enc->named_parameters(), dp = net.dec->named_parameters(), op = net.out->named_parameters();
  w.enc_wih = ToVec(ep["weight_ih_l0"]);
  w.enc_whh = ToVec(ep["weight_hh_l0"]);
  w.enc_b = ToVec(ep["bias_ih_l0"] + ep["bias_hh_l0"]);
  w.dec_wih = ToVec(dp["weight_ih_l0"]);
  w.dec_whh = ToVec(dp["weight_hh_l0"]);
  w.dec_b = ToVec(dp["bias_ih_l0"] + dp["bias_hh_l0"]);
  w.out_w = ToVec(op["weight"]);
  w.out_b = ToVec(op["bias"])[0];
  return w;
}

void Import(AeNet& net, const LstmAeWeights& w) {
  torch::NoGradGuard ng;
  const int64_t H = w.hidden, G = 4 * H;
  auto set = [](torch::Tensor p, const std::vector<float>& v) {
    p.copy_(torch::from_blob(const_cast<float*>(v.data()), p.sizes(), torch::kFloat));
  };
  auto ep = net.enc->named_parameters(), dp = net.dec->named_parameters(), op = net.out->named_parameters();
  set(ep["weight_ih_l0"], w.enc_wih);
  set(ep["weight_hh_l0"], w.enc_whh);
  set(ep["bias_ih_l0"], w.enc_b);
  ep["bias_hh_l0"].zero_();
  set(dp["weight_ih_l0"], w.dec_wih);
  set(dp["weight_hh_l0"], w.dec_whh);
  set(dp["bias_ih_l0"], w.dec_b);
  dp["bias_hh_l0"].zero_();
  set(op["weight"], w.out_w);
  op["bias"].fill_(w.out_b);
  (void)G;
}

std::string Bar(double frac, int width = 24) {
  int n = static_cast<int>(std::lround(std::clamp(frac, 0.0, 1.0) * width));
  return std::string(static_cast<size_t>(n), '#') + std::string(static_cast<size_t>(width - n), '.');
}

LstmAeWeights InitWeights(int window, int hidden, uint64_t seed) {
  torch::manual_seed(seed);
  AeNet net(window, hidden);
  return Export(net);
}

std::vector<float> Reconstruct(const LstmAeWeights& w, const std::vector<float>& x, size_t n) {
  torch::NoGradGuard ng;
  AeNet net(w.window, w.hidden);
  Import(net, w);
  torch::Tensor in = torch::from_blob(const_cast<float*>(x.data()), {static_cast<int64_t>(n), w.window}, torch::kFloat);
  return ToVec(net.forward(in));
}

Result<LstmAeWeights> Fit(const WindowSet& train, const WindowSet& val, const TrainOptions& opt, int* epochs_run,
                          double* best_val) {
  if (train.size() == 0) return Status::Error("no training windows");
  torch::manual_seed(opt.seed);
  torch::set_num_threads(std::max(1, opt.torch_threads));
  AeNet net(opt.window, opt.hidden);
  torch::optim::Adam adam(net.parameters(), torch::optim::AdamOptions(opt.lr));
  const int64_t T = opt.window, N = static_cast<int64_t>(train.size());
  torch::Tensor X = torch::from_blob(const_cast<float*>(train.x.data()), {N, T}, torch::kFloat).clone();
  // Validation loss on at most 4,096 windows (early stopping only; thresholds use all of them).
  int64_t NV = std::min<int64_t>(static_cast<int64_t>(val.size()), 4096);
  torch::Tensor XV;
  if (NV > 0) XV = torch::from_blob(const_cast<float*>(val.x.data()), {NV, T}, torch::kFloat).clone();
  std::mt19937_64 rng(opt.seed ^ 0x5EEDULL);
  std::vector<int64_t> perm(static_cast<size_t>(N));
  std::iota(perm.begin(), perm.end(), 0);
  double best = 1e30;
  LstmAeWeights best_w = Export(net);
  int bad = 0, run = 0;
  auto t0 = std::chrono::steady_clock::now();
  const int64_t nb = (N + opt.batch - 1) / opt.batch;
  for (int ep = 0; ep < opt.epochs; ep++) {
    std::shuffle(perm.begin(), perm.end(), rng);
    torch::Tensor idx = torch::from_blob(perm.data(), {N}, torch::kLong);
    double sum = 0;
    net.train();
    for (int64_t b = 0; b < nb; b++) {
      torch::Tensor xb = X.index_select(0, idx.slice(0, b * opt.batch, std::min(N, (b + 1) * opt.batch)));
      adam.zero_grad();
      torch::Tensor loss = torch::mse_loss(net.forward(xb), xb);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(net.parameters(), 1.0);
      adam.step();
      sum += loss.item<double>();
      if (opt.progress && (b % 16 == 0 || b + 1 == nb)) {
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double done = (ep + static_cast<double>(b + 1) / static_cast<double>(nb)) / opt.epochs;
        std::fprintf(stderr, "\r[train] epoch %d/%d [%s] loss %.5f | ETA %.0fs   ", ep + 1, opt.epochs,
                     Bar(static_cast<double>(b + 1) / static_cast<double>(nb)).c_str(),
                     sum / static_cast<double>(b + 1), done > 0 ? el / done - el : 0.0);
      }
    }
    run = ep + 1;
    double vl = sum / static_cast<double>(nb);
    if (NV > 0) {
      torch::NoGradGuard ng;
      net.eval();
      vl = torch::mse_loss(net.forward(XV), XV).item<double>();
    }
    if (opt.progress)
      std::fprintf(stderr, "\r[train] epoch %d/%d loss %.5f val %.5f%s\n", ep + 1, opt.epochs,
                   sum / static_cast<double>(nb), vl, vl < best ? " *" : "");
    if (vl < best - 1e-6) {
      best = vl;
      best_w = Export(net);
      bad = 0;
    } else if (++bad >= opt.patience) {
      if (opt.progress) std::fprintf(stderr, "[train] early stop: no improvement for %d epochs\n", opt.patience);
      break;
    }
  }
  if (epochs_run) *epochs_run = run;
  if (best_val) *best_val = best;
  return best_w;
}

}  // namespace

}  // namespace iotpipe::ml

extern "C" __attribute__((visibility("default"))) const iotpipe::ml::TorchApi* iotpipe_torch_api() {
  static const iotpipe::ml::TorchApi api = [] {
    iotpipe::ml::TorchApi a;
    a.fit_weights = &iotpipe::ml::Fit;
    a.reconstruct = &iotpipe::ml::Reconstruct;
    a.init_weights = &iotpipe::ml::InitWeights;
    return a;
  }();
  return &api;
}
