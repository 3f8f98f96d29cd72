// The C interface between pair_style kerase3 (no TensorFlow in it) and the TensorFlow backend
// library it opens with dlopen(RTLD_LOCAL): TensorFlow's symbols (its own OpenSSL among them) stay
// out of the process's global namespace.
#ifndef KERASE3_BACKEND_H
#define KERASE3_BACKEND_H

extern "C" {
// Load MODEL_DIR (a SavedModel with the "lammps" signature); nullptr on failure, message in err.
void *kerase3_backend_open(const char *model_dir, int intra_threads, int inter_threads, int xla, char *err, int errlen);
// Energy of the atoms with local[i] != 0, forces on all n atoms (n x 3), every atom's energy and
// the virial (3 x 3, eV) of that energy; each edge's vector is positions[sender] -
// positions[receiver] + shifts[edge]. Returns 0, or -1 with a message in err.
int kerase3_backend_compute(void *handle, int n, const double *positions, const int *atomic_numbers, const int *local,
                            int num_edges, const int *senders, const int *receivers, const double *shifts, double *energy,
                            double *forces, double *atom_energies, double *virial, char *err, int errlen);
void kerase3_backend_close(void *handle);
}

#endif
