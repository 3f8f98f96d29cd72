"""Options of the tensor-product kernels, read when a program is traced (never at import).

`KernelOptions` holds the defaults; `kernel_options` overrides some of them for the programs
traced inside a ``with`` block (a context variable: per thread, nested blocks stack).

Example:
    >>> from kerase3.ops import kernel_options, current_kernel_options
    >>> current_kernel_options().edge_chunk
    256
    >>> with kernel_options(edge_chunk=64, loop_min_edges=0):
    ...     current_kernel_options().edge_chunk, current_kernel_options().loop_min_edges
    (64, 0)
"""

import contextlib
import contextvars
import dataclasses

__all__ = ["KernelOptions", "kernel_options", "current_kernel_options"]


@dataclasses.dataclass(frozen=True)
class KernelOptions:
    """How the coupled tensor-product kernel (`kerase3.ops.scatter_tensor_product`) is written.

    Attributes:
        edge_chunk: edges per step of the loop over blocks of edges: per-edge intermediates exist
            for this many edges at a time (0 turns the loop off).
        small_graph_chunk: edges per step instead, on graphs of at most ``small_graph_edges``
            edges (known when traced) whose messages have at least ``wide_message`` components:
            fewer, larger steps there (the default ``Potential``, 1,120 components: 17% faster
            energy + forces at 1,536 edges, 12% at 4,864, 7% at 12,032, and 3% slower at 37,120,
            where ``edge_chunk`` stays; a narrow model, 208 components, is 6% slower with it at
            4,864 edges; ``benchmarks/RESULTS.md``, "Small systems").
        loop_min_edges: edge counts (known when traced) up to which all edges are taken at once:
            small graphs gain nothing from the loop and compile a little faster without it.
        loop_min_values: and only while edges x message components stay within this many: wide
            products (SevenNet-0's 3,136 components per edge) run faster in blocks of edges already
            at a few thousand edges (the block's intermediates stay in cache; 1.6x at 2,700 edges,
            ``benchmarks/RESULTS.md``), narrow ones (kerase3's default 192) up to ``loop_min_edges``.
        compact_max_rows: products over at most this many rows (edges, known when traced; outside
            the edge loop) are written in the compact form (the sum over input components one
            batched matrix product, the weights expanded over their paths' components by one
            gather): XLA compiles it faster and it runs as fast on a few hundred edges; on more
            edges the other form (vectorised along the channels) runs faster, and the edge loop's
            blocks always use it (``benchmarks/RESULTS.md``).
        whole_edges_without_xla: graphs TensorFlow runs without XLA (eager calls; graphs exported
            for TF Serving, which disables XLA) take all edges at once, in the compact form:
            TensorFlow's executor runs one kernel per op and materialises every intermediate, so
            fewer and larger kernels win there, and a loop's body runs slower than the same ops
            outside it. The price is memory: per-edge intermediates exist for all edges at once.
    """

    edge_chunk: int = 256
    small_graph_chunk: int = 512
    small_graph_edges: int = 16384
    wide_message: int = 1024
    loop_min_edges: int = 4096
    loop_min_values: int = 4096 * 192
    compact_max_rows: int = 512
    whole_edges_without_xla: bool = True


_CURRENT = contextvars.ContextVar("kerase3_kernel_options", default=KernelOptions())


def current_kernel_options():
    """The `KernelOptions` in force (the defaults outside any `kernel_options` block)."""
    return _CURRENT.get()


@contextlib.contextmanager
def kernel_options(**overrides):
    """Override some `KernelOptions` for the programs traced inside the block.

    Setting ``edge_chunk`` alone sets ``small_graph_chunk`` to it too. A model traced once keeps
    the forms it was traced with: set the options before its first call
    (or ``fit``/``predict``/export) in a process, or around the call that traces it.
    """
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(KernelOptions)})
    if unknown:
        raise ValueError(f"kernel_options: unknown options {unknown}. Known: "
                         f"{[f.name for f in dataclasses.fields(KernelOptions)]}")
    if "edge_chunk" in overrides and "small_graph_chunk" not in overrides:
        overrides["small_graph_chunk"] = overrides["edge_chunk"]  # the chunk asked for, at every size
    token = _CURRENT.set(dataclasses.replace(_CURRENT.get(), **overrides))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
