"""The contract every kerase3 layer keeps: `IrrepsLayer`, and the helpers layers and heads share.

An `IrrepsLayer` holds its irreps as `Irreps` attributes (``layer.irreps_in``,
``layer.irreps_out``, ...; they compare equal to their strings), stores them as strings in
``get_config``, and checks the last axis of its inputs with one message:
``"<Layer>: <arg> must have a last axis of size <dim> for irreps <irreps>. Received: ..."``.
"""

import warnings

import keras

from ..backend import geometry_dtype as _geometry_dtype
from ..o3 import Irreps
from ..ops.layout import check_last_dim

__all__ = ["IrrepsLayer", "Statistic", "SharedStatistic", "irreps_arg", "geometry_dtype", "normal_init", "renamed_arguments"]


def irreps_arg(value, layer, arg):
    """``Irreps`` from a string/Irreps, with an error naming the layer and argument."""
    try:
        return Irreps(value)
    except ValueError as e:
        raise ValueError(f"{layer}: {arg} is not valid irreps ({e}). Received: {arg}={value!r}") from None


def renamed_arguments(kwargs, renames, where):
    """Arguments given under an older name (``renames``: ``{old: new}``; saved configs still use
    them) taken out of ``kwargs``: ``{new: value}``, with a ``DeprecationWarning`` each. Both names
    at once raise a ``ValueError``."""
    out = {}
    for old, new in renames.items():
        if old in kwargs:
            warnings.warn(f"{where}: argument {old!r} is now {new!r}", DeprecationWarning, stacklevel=3)
            out[new] = kwargs.pop(old)
    return out


def geometry_dtype(dtype):
    """The ``dtype`` argument of a layer that computes geometry (spherical harmonics, radial bases).

    An explicit ``dtype`` is respected; without one the layer follows the global policy except
    that a mixed or low-precision global policy gives ``"float32"`` (`kerase3.backend.geometry_dtype`,
    the rule models apply to their geometry too)."""
    if dtype is not None:
        return dtype
    policy = keras.config.dtype_policy()
    return "float32" if _geometry_dtype(policy) != policy.compute_dtype else None


def normal_init():
    """N(0, 1): e3nn's initialisation; normalisation lives in the forward pass."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=1.0)


class Statistic:
    """A number a layer or model takes from data (``avg_num_neighbors``...), held as a non-trainable
    scalar variable once built: saved with the weights, settable before and after ``build``.

    Declared on the class (``avg_num_neighbors = Statistic()``); reading gives a Python float,
    setting assigns the variable when it exists; ``build`` calls `create`, and ``call`` reads
    `variable` (the traced graph reads the variable, so a new value needs no new trace).

    Example:
        >>> class Scale(keras.layers.Layer):
        ...     factor = Statistic()
        ...     def __init__(self, factor=1.0, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.factor = factor
        ...     def build(self, input_shape=None):
        ...         Scale.factor.create(self)
        ...     def call(self, x):
        ...         return x * Scale.factor.variable(self)
        >>> layer = Scale(2.0)
        >>> layer.build()
        >>> layer.factor = 3.0
        >>> layer.factor, float(layer(np.ones(1))[0]), [w.name for w in layer.non_trainable_weights]
        (3.0, 3.0, ['factor'])
    """

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        var = obj.__dict__.get(f"_{self.name}_variable")
        if var is not None:
            return float(keras.ops.convert_to_numpy(var))
        try:
            return obj.__dict__[f"_{self.name}_value"]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value):
        value = float(value)
        obj.__dict__[f"_{self.name}_value"] = value
        var = obj.__dict__.get(f"_{self.name}_variable")
        if var is not None:
            var.assign(value)

    def create(self, obj):
        """The variable, made once (in ``build``) from the value set so far."""
        var = obj.__dict__.get(f"_{self.name}_variable")
        if var is None:
            var = obj.add_weight(name=self.name, shape=(), trainable=False,
                                 initializer=keras.initializers.Constant(obj.__dict__[f"_{self.name}_value"]))
            obj.__dict__[f"_{self.name}_variable"] = var
        return var

    def variable(self, obj):
        """The variable (`create` it first)."""
        return obj.__dict__[f"_{self.name}_variable"]


class SharedStatistic:
    """A `Statistic` of a layer or model that its sublayers hold: reading gives the first one's,
    setting sets every one. ``paths`` are attribute names (dotted for deeper ones) of sublayers
    or lists of sublayers, each holding the statistic under the same name.

    Example:
        >>> class Twice(keras.layers.Layer):
        ...     factor = SharedStatistic("a", "b")
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a, self.b = Scale(), Scale()  # each with ``factor = Statistic()``
        >>> class Scale(keras.layers.Layer):
        ...     factor = Statistic()
        >>> t = Twice()
        >>> t.factor = 2.0
        >>> t.a.factor, t.b.factor, t.factor
        (2.0, 2.0, 2.0)
    """

    def __init__(self, *paths):
        self.paths = paths

    def __set_name__(self, owner, name):
        self.name = name

    def _holders(self, obj):
        for path in self.paths:
            target = obj
            for part in path.split("."):
                target = getattr(target, part)
            yield from target if isinstance(target, (list, tuple)) else [target]

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(next(self._holders(obj)), self.name)

    def __set__(self, obj, value):
        for holder in self._holders(obj):
            setattr(holder, self.name, value)


class IrrepsLayer(keras.layers.Layer):
    """Base of the layers whose inputs and outputs are irreps features.

    Subclasses declare their irreps with `set_irreps` (validated, kept as `Irreps`, written to
    the config as strings) and check inputs with `check_input`.

    Example:
        >>> class Double(IrrepsLayer):
        ...     def __init__(self, irreps_in, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.set_irreps(irreps_in=irreps_in)
        ...         self.irreps_out = self.irreps_in
        ...     def call(self, x):
        ...         self.check_input(x, self.irreps_in)
        ...         return 2 * x
        >>> layer = Double("2x0e + 1o")
        >>> layer.irreps_in.dim, layer.get_config()["irreps_in"]
        (5, '2x0e+1x1o')
    """

    #: positions of the positional arguments that are irreps features: integer or bool arrays there
    #: are computed as floats of the layer's compute dtype (never as integers, never a TypeError)
    _float_args = (0,)

    def __call__(self, *args, **kwargs):
        if args:
            args = list(args)
            for i in self._float_args:
                if i < len(args) and args[i] is not None and hasattr(args[i], "dtype") and \
                        "float" not in keras.backend.standardize_dtype(args[i].dtype):
                    args[i] = keras.ops.cast(args[i], self.compute_dtype)
        return super().__call__(*args, **kwargs)

    def set_irreps(self, **irreps):
        """Set each ``name=irreps`` (string or `Irreps`; None allowed) as an `Irreps` attribute that
        ``get_config`` writes back as a string."""
        names = list(getattr(self, "_irreps_config", ()))
        for name, value in irreps.items():
            setattr(self, name, None if value is None else irreps_arg(value, type(self).__name__, name))
            if name not in names:
                names.append(name)
        self._irreps_config = tuple(names)

    def check_input(self, x, irreps, arg="input"):
        """A ``ValueError`` naming the layer, the irreps and the shape when ``x``'s last axis is not ``irreps.dim``."""
        check_last_dim(x, irreps, type(self).__name__, arg)

    def get_config(self):
        config = super().get_config()
        for name in getattr(self, "_irreps_config", ()):
            value = getattr(self, name)
            config[name] = None if value is None else str(value)
        return config
