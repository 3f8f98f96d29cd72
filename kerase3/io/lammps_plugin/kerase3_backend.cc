// TensorFlow backend of pair_style kerase3: loads a model exported by
// kerase3.io.lammps.export_for_lammps with TensorFlow's C++ SavedModel loader (tag "serve", as TF
// Serving loads it) and runs its "lammps" signature (XLA disabled, as TF Serving runs it) or its
// "lammps_xla" signature (compiled by XLA; atoms and edges padded to buckets so that a trajectory
// compiles a few shapes, not one per step). C entry points only, the rest hidden: the pair style
// opens this library with dlopen(RTLD_LOCAL).

#include "kerase3_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/compiler/jit/flags.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/public/session.h"

namespace {

struct Model {
  tensorflow::SavedModelBundle bundle;
  tensorflow::DataType float_type = tensorflow::DT_FLOAT;
  bool xla = false;
  std::string in_positions, in_numbers, in_senders, in_receivers, in_local, in_shifts;
  std::string out_energy, out_forces, out_atom_energies, out_virial;
};

void set_error(char *err, int errlen, const std::string &message) {
  if (err && errlen > 0) std::snprintf(err, errlen, "%s", message.c_str());
}

// smallest bucket >= n: multiples of 32 up to 256, then steps of 1/8
long bucket(long n) {
  if (n <= 256) return std::max(32L, (n + 31) / 32 * 32);
  long b = 256;
  while (b < n) b += std::max(32L, b / 8 / 32 * 32);
  return b;
}

template <typename T>
void fill_positions(tensorflow::Tensor &t, const double *positions, int n, long n_pad) {
  auto flat = t.flat<T>();
  for (long i = 0; i < n_pad * 3; ++i) flat(i) = i < 3L * n ? static_cast<T>(positions[i]) : T(0);
  // padding atoms sit apart from each other and from the structure: no edge reaches them
  for (long i = n; i < n_pad; ++i) flat(3 * i) = static_cast<T>(1e6 + 100.0 * (i - n));
}

template <typename T>
void fill_shifts(tensorflow::Tensor &t, const double *shifts, long e, long e_pad) {
  auto flat = t.flat<T>();
  for (long i = 0; i < e_pad * 3; ++i) flat(i) = i < 3 * e ? static_cast<T>(shifts[i]) : T(0);
}

template <typename T>
void read_floats(const tensorflow::Tensor &t, double *out, long count) {
  auto flat = t.flat<T>();
  for (long i = 0; i < count; ++i) out[i] = static_cast<double>(flat(i));
}

// energy, forces (n x 3), atomic energies (n), virial (3 x 3): the signature's outputs in order
template <typename T>
void read_outputs(const std::vector<tensorflow::Tensor> &out, long n, double *energy, double *forces,
                  double *atom_energies, double *virial) {
  read_floats<T>(out[0], energy, 1);
  read_floats<T>(out[1], forces, 3 * n);
  read_floats<T>(out[2], atom_energies, n);
  read_floats<T>(out[3], virial, 9);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void *kerase3_backend_open(const char *model_dir, int intra_threads, int inter_threads,
                                                                  int xla, char *err, int errlen) {
  auto *model = new Model();
  model->xla = xla != 0;
  if (!model->xla) tensorflow::DisableXlaCompilation();  // tensorflow_model_server's default
  tensorflow::SessionOptions options;
  if (intra_threads > 0) options.config.set_intra_op_parallelism_threads(intra_threads);
  if (inter_threads > 0) options.config.set_inter_op_parallelism_threads(inter_threads);
  tensorflow::RunOptions run_options;
  tensorflow::Status status = tensorflow::LoadSavedModel(options, run_options, model_dir, {"serve"}, &model->bundle);
  if (!status.ok()) {
    set_error(err, errlen, "cannot load " + std::string(model_dir) + " as a SavedModel: " + status.ToString());
    delete model;
    return nullptr;
  }
  const std::string name = model->xla ? "lammps_xla" : "lammps";
  const auto &sigs = model->bundle.meta_graph_def.signature_def();
  auto it = sigs.find(name);
  if (it == sigs.end()) {
    set_error(err, errlen, std::string(model_dir) + " has no '" + name +
                               "' signature: export the model with kerase3.io.lammps.export_for_lammps");
    delete model;
    return nullptr;
  }
  const auto &sig = it->second;
  const char *inputs[] = {"positions", "atomic_numbers", "senders", "receivers", "local", "shifts"};
  std::string *in_names[] = {&model->in_positions, &model->in_numbers, &model->in_senders, &model->in_receivers,
                             &model->in_local, &model->in_shifts};
  for (int k = 0; k < 6; ++k) {
    auto found = sig.inputs().find(inputs[k]);
    if (found == sig.inputs().end()) {
      set_error(err, errlen, "signature '" + name + "' has no input '" + inputs[k] + "'");
      delete model;
      return nullptr;
    }
    *in_names[k] = found->second.name();
  }
  model->float_type = sig.inputs().at("positions").dtype();
  const char *outputs[] = {"energy", "forces", "atomic_energies", "virial"};
  std::string *out_names[] = {&model->out_energy, &model->out_forces, &model->out_atom_energies, &model->out_virial};
  for (int k = 0; k < 4; ++k) {
    auto found = sig.outputs().find(outputs[k]);
    if (found == sig.outputs().end()) {
      set_error(err, errlen, "signature '" + name + "' has no output '" + outputs[k] + "'");
      delete model;
      return nullptr;
    }
    *out_names[k] = found->second.name();
  }
  return model;
}

__attribute__((visibility("default"))) int kerase3_backend_compute(void *handle, int n, const double *positions,
                                                                   const int *atomic_numbers, const int *local,
                                                                   int num_edges, const int *senders, const int *receivers,
                                                                   const double *shifts, double *energy, double *forces,
                                                                   double *atom_energies, double *virial, char *err,
                                                                   int errlen) {
  auto *model = static_cast<Model *>(handle);
  // XLA compiles one program per shape: pad atoms and edges to buckets (padding atoms have atomic
  // number 0, padding edges join the first padding atom to itself: both contribute nothing)
  long n_pad = model->xla ? bucket(n + 1) : n;
  long e_pad = model->xla ? bucket(num_edges) : num_edges;
  tensorflow::Tensor pos(model->float_type, tensorflow::TensorShape({n_pad, 3}));
  if (model->float_type == tensorflow::DT_DOUBLE)
    fill_positions<double>(pos, positions, n, n_pad);
  else
    fill_positions<float>(pos, positions, n, n_pad);
  tensorflow::Tensor z(tensorflow::DT_INT32, tensorflow::TensorShape({n_pad}));
  tensorflow::Tensor loc(tensorflow::DT_BOOL, tensorflow::TensorShape({n_pad}));
  for (long i = 0; i < n_pad; ++i) {
    z.flat<int>()(i) = i < n ? atomic_numbers[i] : 0;
    loc.flat<bool>()(i) = i < n ? local[i] != 0 : false;
  }
  tensorflow::Tensor snd(tensorflow::DT_INT32, tensorflow::TensorShape({e_pad}));
  tensorflow::Tensor rcv(tensorflow::DT_INT32, tensorflow::TensorShape({e_pad}));
  for (long k = 0; k < e_pad; ++k) {
    snd.flat<int>()(k) = k < num_edges ? senders[k] : n;
    rcv.flat<int>()(k) = k < num_edges ? receivers[k] : n;
  }
  tensorflow::Tensor sft(model->float_type, tensorflow::TensorShape({e_pad, 3}));
  if (model->float_type == tensorflow::DT_DOUBLE)
    fill_shifts<double>(sft, shifts, num_edges, e_pad);
  else
    fill_shifts<float>(sft, shifts, num_edges, e_pad);
  std::vector<std::pair<std::string, tensorflow::Tensor>> feed = {
      {model->in_positions, pos}, {model->in_numbers, z}, {model->in_senders, snd}, {model->in_receivers, rcv},
      {model->in_local, loc}, {model->in_shifts, sft}};
  std::vector<tensorflow::Tensor> out;
  tensorflow::Status status = model->bundle.session->Run(
      feed, {model->out_energy, model->out_forces, model->out_atom_energies, model->out_virial}, {}, &out);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return -1;
  }
  if (model->float_type == tensorflow::DT_DOUBLE)
    read_outputs<double>(out, n, energy, forces, atom_energies, virial);
  else
    read_outputs<float>(out, n, energy, forces, atom_energies, virial);
  return 0;
}

__attribute__((visibility("default"))) void kerase3_backend_close(void *handle) {
  delete static_cast<Model *>(handle);
}
}
