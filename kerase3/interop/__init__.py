"""Interoperability with other libraries (``kerase3.interop.e3nn``, ``kerase3.interop.mace``)."""
