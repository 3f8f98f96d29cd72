// pair_style kerase3: a kerase3 potential in LAMMPS, in C++, across MPI ranks.
//
//   plugin load /path/to/kerase3_pair.so        (kerase3.io.lammps.build_plugin() builds it)
//   pair_style kerase3 MODEL_DIR [threads N] [xla yes|no] [ghosts auto|yes]
//   pair_coeff * * Cu Au                        (LAMMPS atom types -> elements)
//
// MODEL_DIR is written by kerase3.io.lammps.export_for_lammps: a SavedModel with the "lammps"
// signature and kerase3_lammps.txt (cutoff, number of message-passing layers, species).
//
// On several ranks each rank evaluates the model on its local and ghost atoms with LAMMPS's full
// neighbour list (ghosts' neighbours included); the ghost shell is made at least layers x cutoff
// (+ skin) deep, so the energy of the local atoms is exact; forces on ghost atoms are summed back
// to their owners by LAMMPS's reverse communication (newton pair on). On one rank every ghost is a
// periodic image of a local atom: the graph holds the local atoms only, each edge to an image
// folded onto its owner with the image's offset as the edge's shift (the periodic graph kerase3's
// calculators build), and the ghost shell stays one cutoff deep. On several ranks every image is
// folded the same way, onto one node per atom (for another rank's atom, its copy nearest the
// sub-domain); `ghosts yes` keeps every ghost a node. The model returns the virial.
//
// This library holds no TensorFlow: it opens the backend library beside it
// (libkerase3_lammps_backend.so) with dlopen(RTLD_LOCAL), keeping TensorFlow's own symbols out of
// the global namespace that LAMMPS opens plugins into.

#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "lammpsplugin.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"

#include "kerase3_backend.h"

#ifndef KERASE3_LAMMPS_VERSION
#define KERASE3_LAMMPS_VERSION "unknown"
#endif

using namespace LAMMPS_NS;

namespace {

const char *const ELEMENTS[] = {
    "X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar", "K",
    "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au",
    "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es",
    "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

int atomic_number(const std::string &symbol) {
  for (int z = 1; z < static_cast<int>(sizeof(ELEMENTS) / sizeof(ELEMENTS[0])); ++z)
    if (symbol == ELEMENTS[z]) return z;
  return -1;
}

std::string library_folder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&atomic_number), &info) && info.dli_fname) {
    std::string path(info.dli_fname);
    auto slash = path.rfind('/');
    if (slash != std::string::npos) return path.substr(0, slash);
  }
  return ".";
}

struct Backend {
  void *lib = nullptr;
  decltype(&kerase3_backend_open) open = nullptr;
  decltype(&kerase3_backend_compute) compute = nullptr;
  decltype(&kerase3_backend_close) close = nullptr;
};

}  // namespace

class PairKerase3 : public Pair {
 public:
  explicit PairKerase3(LAMMPS *lmp) : Pair(lmp) {
    single_enable = 0;
    no_virial_fdotr_compute = 1;  // the model returns the virial
    restartinfo = 0;
    one_coeff = 1;
    manybody_flag = 1;
    ghostneigh = 1;  // the neighbours of ghost atoms too: messages pass through them
    unit_convert_flag = 0;
  }

  ~PairKerase3() override {
    if (model_ && backend_.close) backend_.close(model_);
    if (allocated) {
      memory->destroy(setflag);
      memory->destroy(cutsq);
      memory->destroy(cutghost);
    }
  }

  void settings(int narg, char **arg) override {
    if (narg < 1) error->all(FLERR, "Illegal pair_style kerase3 command: pair_style kerase3 MODEL_DIR [threads N] [xla yes|no]");
    model_dir_ = arg[0];
    for (int k = 1; k < narg; k += 2) {
      if (k + 1 >= narg) error->all(FLERR, "pair_style kerase3: keyword {} needs a value", arg[k]);
      std::string key = arg[k], value = arg[k + 1];
      if (key == "threads")
        threads_ = std::stoi(value);
      else if (key == "xla")
        xla_ = value == "yes" || value == "on" || value == "1";
      else if (key == "ghosts")
        force_ghosts_ = value == "yes";
      else
        error->all(FLERR, "pair_style kerase3: unknown keyword {} (threads N, xla yes|no, ghosts auto|yes)", key);
    }
    read_metadata();
    load_backend();
  }

  void coeff(int narg, char **arg) override {
    if (!allocated) allocate();
    int ntypes = atom->ntypes;
    if (narg != 2 + ntypes)
      error->all(FLERR, "pair_coeff * * needs one element per atom type ({} types); got {}", ntypes, narg - 2);
    if (std::string(arg[0]) != "*" || std::string(arg[1]) != "*")
      error->all(FLERR, "pair_style kerase3: use pair_coeff * * ELEMENT ... (one element per type)");
    type_z_.assign(ntypes + 1, 0);
    for (int t = 1; t <= ntypes; ++t) {
      std::string symbol = arg[1 + t];
      int z = atomic_number(symbol);
      if (z < 0) error->all(FLERR, "pair_coeff kerase3: {} (type {}) is not an element symbol", symbol, t);
      bool known = false;
      for (int s : species_) known = known || s == z;
      if (!known) error->all(FLERR, "pair_coeff kerase3: element {} (type {}) is not among the model's species", symbol, t);
      type_z_[t] = z;
    }
    for (int i = 1; i <= ntypes; ++i)
      for (int j = i; j <= ntypes; ++j) setflag[i][j] = 1;
  }

  void init_style() override {
    if (std::strcmp(update->unit_style, "metal") != 0)
      error->all(FLERR, "pair_style kerase3: kerase3 models use eV and Angstrom: set 'units metal' (not {})", update->unit_style);
    if (force->newton_pair == 0) error->all(FLERR, "pair_style kerase3 requires newton pair on");
    folded_ = comm->nprocs == 1 && !force_ghosts_;
    if (folded_) {
      neighbor->add_request(this, NeighConst::REQ_FULL);
    } else {
      neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
      // local atoms' energies see layers x cutoff: every atom that far from the sub-domain is a ghost
      double shell = layers_ * cutoff_ + neighbor->skin;
      if (comm->cutghostuser < shell) comm->cutghostuser = shell;
    }
  }

  double init_one(int i, int j) override {
    if (setflag[i][j] == 0) error->all(FLERR, "pair_style kerase3: all pair coeffs are not set");
    cutghost[i][j] = cutghost[j][i] = cutoff_;
    return cutoff_;
  }

  void compute(int eflag, int vflag) override {
    ev_init(eflag, vflag);
    if (vflag_atom) error->all(FLERR, "pair_style kerase3 does not compute per-atom virials");
    double **x = atom->x;
    double **f = atom->f;
    int *type = atom->type;
    int nlocal = atom->nlocal;
    int nall = nlocal + atom->nghost;
    int inum = list->inum, gnum = folded_ ? 0 : list->gnum;
    int *ilist = list->ilist, *numneigh = list->numneigh;
    int **firstneigh = list->firstneigh;
    double cut2 = cutoff_ * cutoff_;

    // nodes: one per atom tag -- the local atoms, then other ranks' atoms. Every periodic image
    // (a ghost) is folded onto its tag's node, its offset becoming the edge's shift: a local atom's
    // node is the atom itself, another rank's atom's node is the ghost copy with the most
    // neighbours (the one nearest the sub-domain: its list is complete wherever its features are
    // needed). `ghosts yes` keeps every ghost a node of its own.
    tagint *tag = atom->tag;
    owner_of_tag_.clear();
    for (int i = 0; i < nlocal; ++i) owner_of_tag_[tag[i]] = i;
    if (!folded_ && !force_ghosts_) {  // the best copy of each other rank's atom
      best_count_.clear();
      for (int ii = inum; ii < inum + gnum; ++ii) {
        int i = ilist[ii];
        if (owner_of_tag_.count(tag[i])) continue;
        int count = 0;
        for (int jj = 0; jj < numneigh[i]; ++jj) {
          int j = firstneigh[i][jj] & NEIGHMASK;
          double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
          count += dx * dx + dy * dy + dz * dz < cut2;
        }
        auto found = best_count_.find(tag[i]);
        if (found == best_count_.end() || count > found->second.first) best_count_[tag[i]] = {count, i};
      }
    }
    node_.resize(nall);
    atom_of_node_.clear();
    for (int i = 0; i < nlocal; ++i) {
      node_[i] = i;
      atom_of_node_.push_back(i);
    }
    remote_node_of_tag_.clear();
    for (int j = nlocal; j < nall; ++j) {
      auto found = force_ghosts_ ? owner_of_tag_.end() : owner_of_tag_.find(tag[j]);
      if (found != owner_of_tag_.end()) {
        node_[j] = found->second;
        continue;
      }
      if (folded_) error->one(FLERR, "pair_style kerase3: ghost atom {} has no local owner on one rank", tag[j]);
      if (force_ghosts_) {
        node_[j] = static_cast<int>(atom_of_node_.size());
        atom_of_node_.push_back(j);
        continue;
      }
      auto known = remote_node_of_tag_.find(tag[j]);
      if (known == remote_node_of_tag_.end()) {
        auto best = best_count_.find(tag[j]);
        int rep = best == best_count_.end() ? j : best->second.second;
        known = remote_node_of_tag_.emplace(tag[j], static_cast<int>(atom_of_node_.size())).first;
        atom_of_node_.push_back(rep);
      }
      node_[j] = known->second;
    }
    int nodes = static_cast<int>(atom_of_node_.size());
    positions_.resize(3L * nodes);
    numbers_.resize(nodes);
    local_.resize(nodes);
    for (int k = 0; k < nodes; ++k) {
      int i = atom_of_node_[k];
      for (int d = 0; d < 3; ++d) positions_[3L * k + d] = x[i][d];
      numbers_[k] = type_z_[type[i]];
      local_[k] = k < nlocal;
    }
    senders_.clear();
    receivers_.clear();
    shifts_.clear();
    for (int ii = 0; ii < inum + gnum; ++ii) {
      int i = ilist[ii];
      if (i >= nlocal && atom_of_node_[node_[i]] != i) continue;  // a folded copy: its node's edges
      int *jlist = firstneigh[i];
      for (int jj = 0; jj < numneigh[i]; ++jj) {
        int j = jlist[jj] & NEIGHMASK;
        double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
        if (dx * dx + dy * dy + dz * dz < cut2) {
          int s = node_[j];  // message from j (its node) to i
          int a = atom_of_node_[s];
          senders_.push_back(s);
          receivers_.push_back(node_[i]);
          for (int d = 0; d < 3; ++d) shifts_.push_back(x[j][d] - x[a][d]);
        }
      }
    }
    forces_.assign(3L * nodes, 0.0);
    atom_energies_.assign(nodes, 0.0);
    double energy = 0.0, w[9] = {0};
    char err[4096] = {0};
    if (backend_.compute(model_, nodes, positions_.data(), numbers_.data(), local_.data(), static_cast<int>(senders_.size()),
                         senders_.data(), receivers_.data(), shifts_.data(), &energy, forces_.data(),
                         atom_energies_.data(), w, err, sizeof(err)) != 0)
      error->one(FLERR, "pair_style kerase3: the model failed: {}", err);
    for (int k = 0; k < nodes; ++k)
      for (int d = 0; d < 3; ++d) f[atom_of_node_[k]][d] += forces_[3L * k + d];
    if (eflag_global) eng_vdwl += energy;
    if (eflag_atom)
      for (int i = 0; i < nlocal; ++i) eatom[i] += atom_energies_[i];
    if (vflag_global) {  // the model's own virial: sum r (x) f would miss the folded images' offsets
      virial[0] += w[0];
      virial[1] += w[4];
      virial[2] += w[8];
      virial[3] += w[1];
      virial[4] += w[2];
      virial[5] += w[5];
    }
  }

 private:
  void allocate() {
    allocated = 1;
    int n = atom->ntypes + 1;
    memory->create(setflag, n, n, "pair:setflag");
    memory->create(cutsq, n, n, "pair:cutsq");
    memory->create(cutghost, n, n, "pair:cutghost");
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) setflag[i][j] = 0;
  }

  void read_metadata() {
    std::string path = model_dir_ + "/kerase3_lammps.txt";
    std::ifstream in(path);
    if (!in) error->all(FLERR, "pair_style kerase3: no {} (export the model with kerase3.io.lammps.export_for_lammps)", path);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string key;
      words >> key;
      if (key == "cutoff")
        words >> cutoff_;
      else if (key == "interactions")
        words >> layers_;
      else if (key == "species") {
        int z;
        while (words >> z) species_.push_back(z);
      }
    }
    if (!(cutoff_ > 0) || layers_ < 1 || species_.empty())
      error->all(FLERR, "pair_style kerase3: {} lacks cutoff, interactions or species", path);
  }

  void load_backend() {
    std::string lib = library_folder() + "/libkerase3_lammps_backend.so";
    backend_.lib = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!backend_.lib) error->all(FLERR, "pair_style kerase3: cannot open {}: {}", lib, dlerror());
    backend_.open = reinterpret_cast<decltype(backend_.open)>(dlsym(backend_.lib, "kerase3_backend_open"));
    backend_.compute = reinterpret_cast<decltype(backend_.compute)>(dlsym(backend_.lib, "kerase3_backend_compute"));
    backend_.close = reinterpret_cast<decltype(backend_.close)>(dlsym(backend_.lib, "kerase3_backend_close"));
    if (!backend_.open || !backend_.compute || !backend_.close)
      error->all(FLERR, "pair_style kerase3: {} lacks the kerase3_backend_* entry points", lib);
    char err[4096] = {0};
    model_ = backend_.open(model_dir_.c_str(), threads_, threads_ > 0 ? 1 : 0, xla_ ? 1 : 0, err, sizeof(err));
    if (!model_) error->all(FLERR, "pair_style kerase3: {}", err);
  }

  std::string model_dir_;
  int threads_ = 0;
  bool xla_ = false, force_ghosts_ = false, folded_ = false;
  double cutoff_ = 0.0;
  int layers_ = 0;
  std::vector<int> species_, type_z_;
  Backend backend_;
  void *model_ = nullptr;
  std::vector<double> positions_, forces_, atom_energies_, shifts_;
  std::vector<int> numbers_, local_, senders_, receivers_, node_, atom_of_node_;
  std::unordered_map<tagint, int> owner_of_tag_, remote_node_of_tag_;
  std::unordered_map<tagint, std::pair<int, int>> best_count_;  // tag -> (neighbours, ghost copy)
};

static Pair *create_pair_kerase3(LAMMPS *lmp) { return new PairKerase3(lmp); }

extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin;
  auto register_plugin = reinterpret_cast<lammpsplugin_regfunc>(regfunc);
  plugin.version = KERASE3_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "kerase3";
  plugin.info = "kerase3 potentials (SavedModels of kerase3.io.lammps.export_for_lammps) across MPI ranks";
  plugin.author = "kerase3";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1 *>(&create_pair_kerase3);
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
